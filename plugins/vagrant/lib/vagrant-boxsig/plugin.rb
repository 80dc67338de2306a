# frozen_string_literal: true

module VagrantPlugins
  module Boxsig
    class Plugin < Vagrant.plugin("2")
      name "boxsig"
      description <<~DESC
        Hands every box add of Vagrant to boxsig, which verifies the box's OpenPGP
        signatures before Vagrant can see it, with a trust policy that can be pinned in
        the Vagrantfile (config.boxsig).
      DESC

      # config.boxsig.* in any Vagrantfile (project, home, box).
      config(:boxsig) do
        Plugin.init!
        require_relative "config"
        Config
      end

      command(:boxsig) do
        Plugin.init!
        require_relative "command/root"
        Command::Root
      end

      # Vagrant's BoxAdd step is where every box add of Vagrant happens: `vagrant box add`,
      # `vagrant box update` and the add of a missing box by `vagrant up` (HandleBox) all
      # run Vagrant::Action.action_box_add. The plugin makes BoxAdd hand the add to
      # `boxsig add` (Action::TakeOver), so that Vagrant never extracts a box that boxsig
      # has not verified. Vagrant's action hooks can only add middleware around a step,
      # not replace it, and a middleware that skipped BoxAdd would also skip whatever
      # other plugins run after it; hence a module prepended to BoxAdd, as soon as the
      # plugin is loaded, so that no box add can run before it.
      def self.take_over_box_add!
        require_relative "action/add_box"
        box_add = Vagrant::Action::Builtin::BoxAdd
        box_add.prepend(Action::TakeOver) unless box_add.ancestors.include?(Action::TakeOver)
      end

      def self.init!
        return if defined?(@_init) && @_init

        I18n.load_path << File.expand_path("../../locales/en.yml", __dir__)
        I18n.reload!
        require_relative "errors"
        @_init = true
      end
    end

    Plugin.take_over_box_add!
  end
end
