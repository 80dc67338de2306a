# frozen_string_literal: true

require "optparse"
require_relative "../cli"
require_relative "../settings"

module VagrantPlugins
  module Boxsig
    module Command
      # `vagrant boxsig <subcommand>`
      class Root < Vagrant.plugin("2", :command)
        def self.synopsis
          "boxsig box signatures: repackage and re-sign, re-verify installed boxes"
        end

        def initialize(argv, env)
          super
          @main_args, @sub_command, @sub_args = split_main_and_subcommand(argv)
          @subcommands = Vagrant::Registry.new
          @subcommands.register(:repackage) do
            require_relative "repackage"
            Repackage
          end
          @subcommands.register(:verify) do
            require_relative "verify"
            Verify
          end
        end

        def execute
          return help if @main_args.include?("-h") || @main_args.include?("--help")

          command_class = @subcommands.get(@sub_command.to_sym) if @sub_command
          return help if !command_class || !@sub_command

          command_class.new(@sub_args, @env).execute
        end

        def help
          opts = OptionParser.new do |o|
            o.banner = "Usage: vagrant boxsig <subcommand> [<args>]"
            o.separator ""
            o.separator "Available subcommands:"
            o.separator "     repackage   pack an installed box again (without its old .boxsig/) and sign it"
            o.separator "     verify      re-verify installed boxes against their .boxsig/ and the trust policy"
            o.separator ""
            o.separator "For help on any individual subcommand run `vagrant boxsig <subcommand> -h`"
          end
          @env.ui.info(opts.help, prefix: false)
          0
        end
      end

      # Shared helpers of the subcommands.
      module Helpers
        def boxsig_config
          Settings.for_environment(@env)
        end

        def boxsig_command(config)
          Settings.command(config)
        end

        # Runs boxsig attached to the terminal; its exit code becomes Vagrant's.
        def run_boxsig(cmd, args)
          @logger.info("running #{cmd.inspect} #{args.inspect}")
          CLI.run_attached(cmd, args, workdir: @env.cwd)
        rescue CLI::Missing => e
          raise Errors::NotInstalled, where: e.message, consequence: ""
        end
      end
    end
  end
end
