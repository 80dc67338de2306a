# frozen_string_literal: true

module VagrantPlugins
  module Boxsig
    class Plugin < Vagrant.plugin("2")
      name "boxsig"
      description <<~DESC
        Verifies boxsig OpenPGP signatures of boxes as Vagrant adds them, with a trust
        policy that can be pinned in the Vagrantfile (config.boxsig).
      DESC

      # config.boxsig.* in any Vagrantfile (project, home, box).
      config(:boxsig) do
        Plugin.init!
        require_relative "config"
        Config
      end

      # Runs after Vagrant's own BoxAdd middleware, i.e. after download, checksum and
      # extraction into the boxes directory. Registered against the middleware class
      # (second argument), so it is applied wherever BoxAdd runs: `vagrant box add`,
      # `vagrant box update` and the automatic add of `vagrant up` (HandleBox), which all
      # run Vagrant::Action.action_box_add.
      action_hook(:boxsig_verify, :box_add) do |hook|
        Plugin.init!
        require_relative "action/force_guard"
        require_relative "action/verify_box"
        hook.before(Vagrant::Action::Builtin::BoxAdd, Action::ForceGuard)
        hook.after(Vagrant::Action::Builtin::BoxAdd, Action::VerifyBox)
      end

      command(:boxsig) do
        Plugin.init!
        require_relative "command/root"
        Command::Root
      end

      def self.init!
        return if defined?(@_init) && @_init

        I18n.load_path << File.expand_path("../../locales/en.yml", __dir__)
        I18n.reload!
        require_relative "errors"
        @_init = true
      end
    end
  end
end
