# frozen_string_literal: true

require "json"
require "optparse"
require_relative "root"
require_relative "../text"

module VagrantPlugins
  module Boxsig
    module Command
      # vagrant boxsig repackage NAME PROVIDER VERSION --key SECRET.asc [-o OUT]
      #
      # Like `vagrant box repackage` (which leaves `.boxsig/` out, so the old signature does
      # not travel), but the new box is signed. Runs
      #   boxsig repackage NAME PROVIDER VERSION --vagrant-home HOME -o OUT --key ... [--sign-version V]
      # A box that Vagrant installed as version 0 (added from a file or URL) is signed with the
      # version its old signed manifest states, unless --sign-version says otherwise.
      class Repackage < Vagrant.plugin("2", :command)
        include Helpers

        def execute
          options = { keys: [], gpg_keys: [], claims: [] }
          opts = OptionParser.new do |o|
            o.banner = "Usage: vagrant boxsig repackage <name> <provider> <version> [--key SECRET.asc]... [-o OUT]"
            o.separator ""
            o.separator "Packs the installed box again, like `vagrant box repackage` (without the"
            o.separator "box's old .boxsig/ signature), and signs the result with boxsig."
            o.separator ""
            o.separator "Options:"
            o.separator ""
            o.on("--key SECRET.asc", "Sign with this OpenPGP secret key (repeatable)") { |v| options[:keys] << v }
            o.on("--gpg-key FPR", "Sign through GnuPG with this key (repeatable)") { |v| options[:gpg_keys] << v }
            o.on("--passphrase-file FILE", "Read the key passphrase from FILE (or set BOXSIG_PASSPHRASE)") { |v| options[:passphrase_file] = v }
            o.on("--claim KEY=VALUE", "Signed claim (repeatable)") { |v| options[:claims] << v }
            o.on("--expires DURATION", "Signature expiry, e.g. 90d") { |v| options[:expires] = v }
            o.on("--sign-version VERSION", "Version to sign (default: <version>; for a box installed as",
                 "version 0, the version its old signed manifest states)") { |v| options[:sign_version] = v }
            o.on("-o", "--output FILE", "Write the box here (default: config.package.name or package.box)") { |v| options[:output] = v }
          end

          argv = parse_options(opts)
          return if !argv
          raise Vagrant::Errors::CLIInvalidUsage, help: opts.help.chomp if argv.length != 3

          name, provider, version = argv
          box = @env.boxes.find(name, provider.to_sym, "= #{version}")
          unless box
            raise Vagrant::Errors::BoxNotFoundWithProviderAndVersion,
                  name: name, provider: provider, version: version
          end
          version = box.version.to_s

          output = options[:output] || @env.vagrantfile.config.package.name || "package.box"
          output = File.expand_path(output, Dir.pwd)
          signing = !(options[:keys].empty? && options[:gpg_keys].empty?)
          @env.ui.warn("boxsig: no --key or --gpg-key given: the repackaged box will be unsigned.") unless signing

          sign_version = options[:sign_version]
          if sign_version.nil? && version == "0" && signing
            stated = manifest_version(box)
            if stated && stated != version
              @env.ui.info("boxsig: #{Text.clean(name)} is installed as version 0 (added from a file or URL); " \
                           "signing it as version #{Text.clean(stated)}, the version of its old signed manifest " \
                           "(--sign-version overrides).")
            end
          end

          args = ["repackage", name, provider, version, "--vagrant-home", @env.home_path.to_s, "-o", output]
          options[:keys].each { |k| args += ["--key", File.expand_path(k, Dir.pwd)] }
          options[:gpg_keys].each { |k| args += ["--gpg-key", k] }
          args += ["--passphrase-file", File.expand_path(options[:passphrase_file], Dir.pwd)] if options[:passphrase_file]
          options[:claims].each { |c| args += ["--claim", c] }
          args += ["--expires", options[:expires]] if options[:expires]
          args += ["--sign-version", sign_version] if sign_version
          run_boxsig(boxsig_command(boxsig_config), args)
        end

        private

        # The version stated by the installed box's .boxsig/manifest.json, if any.
        def manifest_version(box)
          file = File.join(box.directory.to_s, ".boxsig", "manifest.json")
          return nil unless File.file?(file)

          v = JSON.parse(File.read(file)).dig("box", "version")
          v.is_a?(String) && !v.empty? ? v : nil
        rescue JSON::ParserError, SystemCallError
          nil
        end
      end
    end
  end
end
