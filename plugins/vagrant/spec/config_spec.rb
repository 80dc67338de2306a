# frozen_string_literal: true

require "json"
require "vagrant-boxsig/config"

RSpec.describe VagrantPlugins::Boxsig::Config do
  fpr = "0123456789ABCDEF0123456789ABCDEF01234567"

  def config(&block)
    described_class.new.tap { |c| block&.call(c) }
  end

  it "defaults: enabled, no policy layer, boxsig on the PATH" do
    c = config.tap(&:finalize!)
    expect([c.enabled, c.boxes, c.orgs, c.binary, c.policy_json, c.problems]).to eq([true, {}, {}, nil, nil, []])
  end

  it "merges Vagrantfiles glob by glob, the later one winning" do
    home = config { |c| c.boxes = { "acme/*" => { "pin" => ["A"] }, "x/*" => { "signatures" => "optional" } } }
    project = config { |c| c.boxes = { "acme/*" => { "pin" => [fpr] } } }
    merged = home.merge(project).tap(&:finalize!)
    expect(merged.boxes).to eq("acme/*" => { "pin" => [fpr] }, "x/*" => { "signatures" => "optional" })
  end

  it "the policy layer for boxsig: symbols become strings" do
    c = config { |x| x.boxes = { "acme/*": { pin: [fpr], signatures: :optional } }; x.orgs = { "corp/*" => [fpr] } }.tap(&:finalize!)
    expect(JSON.parse(c.policy_json)).to eq("boxes" => { "acme/*" => { "pin" => [fpr], "signatures" => "optional" } },
                                            "orgs" => { "corp/*" => [fpr] })
  end

  it "validate reports the problems under boxsig (vagrant validate)" do
    c = config { |x| x.orgs = { "corp/*" => ["nope"] } }.tap(&:finalize!)
    expect(c.validate(nil)).to eq("boxsig" => ['config.boxsig.orgs["corp/*"][0]: "nope" is not a full 40-hex-digit OpenPGP fingerprint'])
  end
end
