# frozen_string_literal: true

require_relative "cli"

module VagrantPlugins
  module Boxsig
    # Which config.boxsig applies, checked once, and the boxsig command it names: shared by
    # the add (the replaced BoxAdd) and the `vagrant boxsig` commands.
    module Settings
      module_function

      # The machine's config when a machine adds its box (vagrant up), otherwise the config
      # of the environment's Vagrantfile (the one in the current directory or a parent,
      # merged over ~/.vagrant.d/Vagrantfile), which also exists without any Vagrantfile.
      # Raises Errors::InvalidConfig.
      def for_action(env)
        config = if env[:machine]
                   env[:machine].config.boxsig
                 elsif env[:env]
                   env[:env].vagrantfile.config.boxsig
                 end
        checked(config || defaults)
      end

      # config.boxsig of a Vagrant::Environment (the `vagrant boxsig` commands).
      def for_environment(environment)
        checked(environment.vagrantfile.config.boxsig)
      end

      def checked(config)
        problems = config.problems
        return config if problems.empty?

        raise Errors::InvalidConfig, problems: problems.map { |p| "  - #{p}" }.join("\n")
      end

      def defaults
        require_relative "config"
        Config.new.tap(&:finalize!)
      end

      # The boxsig command as an Array, or Errors::NotInstalled saying where the plugin
      # looked; `consequence` is appended to the message.
      def command(config, consequence: "")
        CLI.command(config.binary)
      rescue CLI::Missing => e
        raise Errors::NotInstalled, where: e.message, consequence: consequence
      end

      # Where boxsig runs: the project directory (the Vagrantfile's), where it looks for
      # boxsig.json as Vagrant looks for the Vagrantfile.
      def workdir(env)
        environment = env[:env] || (env[:machine] && env[:machine].env)
        return nil unless environment

        (environment.root_path || environment.cwd).to_s
      rescue StandardError
        nil
      end
    end
  end
end
