# frozen_string_literal: true

require "optparse"
require_relative "root"

module VagrantPlugins
  module Boxsig
    module Command
      # vagrant boxsig verify [NAME]
      #
      # Re-verifies installed boxes (all, or those named NAME) against their .boxsig/ and
      # the trust policy, including config.boxsig of the Vagrantfile here. Runs
      #   boxsig verify --installed [NAME] --vagrant-home HOME [--policy-json JSON]
      class Verify < Vagrant.plugin("2", :command)
        include Helpers

        def execute
          json = false
          opts = OptionParser.new do |o|
            o.banner = "Usage: vagrant boxsig verify [<name>] [--json]"
            o.separator ""
            o.separator "Re-verifies installed boxes against their .boxsig/ and the trust policy"
            o.separator "(user config, boxsig.json and config.boxsig of this Vagrantfile)."
            o.separator ""
            o.on("--json", "Print boxsig's JSON report") { json = true }
          end
          argv = parse_options(opts)
          return if !argv
          raise Vagrant::Errors::CLIInvalidUsage, help: opts.help.chomp if argv.length > 1

          config = boxsig_config
          args = ["verify", "--installed"]
          args << argv[0] if argv[0]
          args += ["--vagrant-home", @env.home_path.to_s]
          policy = config.policy_json
          args += ["--policy-json", policy] if policy
          args << "--json" if json
          run_boxsig(boxsig_command(config), args)
        end
      end
    end
  end
end
