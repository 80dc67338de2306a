# frozen_string_literal: true

require "vagrant-boxsig/action/add_box"

RSpec.describe VagrantPlugins::Boxsig::Action::TakeOver do
  boxsig = VagrantPlugins::Boxsig

  it "is prepended to Vagrant's BoxAdd as soon as the plugin is loaded" do
    expect(Vagrant::Action::Builtin::BoxAdd.ancestors.first).to eq(described_class)
  end

  # A stand-in for BoxAdd: records whether Vagrant's own add ran.
  class FakeBoxAdd
    def initialize(app)
      @app = app
    end

    def call(env)
      env[:vagrant_added] = true
      env[:box_added] = Struct.new(:name, :version, :provider).new("acme/a", "0", :virtualbox)
      @app.call(env)
    end

    prepend VagrantPlugins::Boxsig::Action::TakeOver
  end

  let(:ui) { Vagrant::UI::Silent.new }
  let(:app) { double("app", call: nil) }

  def env_with(config)
    config.finalize!
    vagrantfile = double("vagrantfile", config: double("config", boxsig: config))
    { ui: ui, env: double("environment", vagrantfile: vagrantfile), box_name: "acme/a", box_url: ["a.box"] }
  end

  it "enabled: boxsig adds the box, Vagrant's own add does not run, the chain goes on" do
    env = env_with(boxsig::Config.new)
    adder = instance_double(boxsig::Action::AddBox, run: nil)
    expect(boxsig::Action::AddBox).to receive(:new).with(env, anything).and_return(adder)
    FakeBoxAdd.new(app).call(env)
    expect(env[:vagrant_added]).to be_nil
    expect(app).to have_received(:call).with(env)
  end

  it "disabled: Vagrant's own add runs, with warnings before and after" do
    env = env_with(boxsig::Config.new.tap { |c| c.enabled = false })
    warnings = []
    allow(ui).to receive(:warn) { |m, *| warnings << m }
    expect(boxsig::Action::AddBox).not_to receive(:new)
    FakeBoxAdd.new(app).call(env)
    expect(env[:vagrant_added]).to be(true)
    expect(warnings.first).to match(/turned off .*Vagrant adds acme\/a itself, UNVERIFIED/)
    expect(warnings.last).to match(%r{acme/a 0 \(virtualbox\) was added UNVERIFIED})
  end

  it "an invalid config.boxsig: no add at all" do
    env = env_with(boxsig::Config.new.tap { |c| c.boxes = "nope" })
    expect { FakeBoxAdd.new(app).call(env) }.to raise_error(boxsig::Errors::InvalidConfig, /must be a Hash/)
    expect(env[:vagrant_added]).to be_nil
  end

  it "an interrupted action stops before boxsig starts" do
    env = env_with(boxsig::Config.new).merge(interrupted: true)
    expect(boxsig::CLI).not_to receive(:run)
    expect { FakeBoxAdd.new(app).call(env) }.to raise_error(Vagrant::Errors::VagrantInterrupt)
  end
end
