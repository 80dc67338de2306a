# frozen_string_literal: true

require "fileutils"
require "log4r"
require "uri"
require_relative "../cli"
require_relative "force_guard"

module VagrantPlugins
  module Boxsig
    module Action
      # Middleware placed right after Vagrant::Action::Builtin::BoxAdd. BoxAdd has already
      # downloaded, checksummed and extracted the box into the boxes directory (and printed
      # "Successfully added box"); this runs
      #
      #   boxsig verify --dir DIR --name NAME [--version VERSION] --provider PROVIDER
      #                 --record [--source URL] [--policy-json JSON] --json
      #
      # and, unless boxsig accepts the box (exit 0), removes the box again (with its version
      # and name directories when they are left empty) and fails the command with boxsig's
      # code and message.
      class VerifyBox
        def initialize(app, _env)
          @app = app
          @logger = Log4r::Logger.new("vagrant::plugins::boxsig::verify_box")
        end

        def call(env)
          box = env[:box_added]
          verify(env, box) if box
          @app.call(env)
        end

        private

        def verify(env, box)
          ui = env[:ui]
          name = box.name
          provider = box.provider.to_s
          version = box.version.to_s
          label = { name: name, version: version, provider: provider }

          config = begin
            boxsig_config(env)
          rescue Vagrant::Errors::VagrantError
            remove_box(env, box)
            raise
          end

          problems = config.problems
          unless problems.empty?
            remove_box(env, box)
            raise Errors::InvalidConfig, problems: problems.map { |p| "  - #{p}" }.join("\n")
          end

          unless config.enabled
            ui.warn("boxsig: signature verification of #{name} #{version} (#{provider}) is " \
                    "turned off (config.boxsig.enabled = false); the box was added unverified.")
            return
          end

          cmd = begin
            CLI.command(config.binary)
          rescue CLI::Missing => e
            remove_box(env, box)
            raise Errors::NotInstalled, label.merge(where: e.message, consequence: not_installed_consequence(label))
          end

          args = ["verify", "--dir", box.directory.to_s, "--name", name, "--provider", provider]
          # A box added directly from a file or URL (not from a catalog) is always installed
          # as version "0" by Vagrant (it refuses --box-version there); its real version is
          # the one in its signed manifest, which boxsig records. Any other version is
          # checked against the manifest.
          args += ["--version", version] unless version == "0"
          args << "--record"
          source = source_of(env, box)
          args += ["--source", source] if source
          policy = config.policy_json
          args += ["--policy-json", policy] if policy
          args << "--json"

          ui.output("boxsig: verifying #{name} #{version} (#{provider})...")
          @logger.info("running #{cmd.inspect} #{args.inspect}")
          result = begin
            CLI.run(cmd, args, workdir: workdir_of(env), json: true)
          rescue CLI::Missing => e
            remove_box(env, box)
            raise Errors::NotInstalled, label.merge(where: e.message, consequence: not_installed_consequence(label))
          end
          @logger.debug("boxsig exit #{result.exit_code}\nstdout: #{result.stdout}\nstderr: #{result.stderr}")

          report = result.json || {}
          if result.exit_code.zero? && report["ok"] != false
            report_accepted(ui, label, report, result, version)
            return
          end

          remove_box(env, box)
          code = (report["code"] || "FAILED").to_s
          message = (report["message"] || first_error_line(result) || "boxsig exited with code #{result.exit_code}").to_s
          data = label.merge(code: code, message: message, exit_code: result.exit_code, hint: hint_for(code, name))
          raise Errors::Refused, data if result.exit_code == 1

          raise Errors::VerifyFailed, data
        end

        # The machine's config when a machine is adding its box (vagrant up), otherwise the
        # config of the environment's Vagrantfile (the one in the current directory or a
        # parent, merged over ~/.vagrant.d/Vagrantfile) -- which also exists when there is no
        # Vagrantfile at all, with defaults.
        def boxsig_config(env)
          config = nil
          if env[:machine]
            config = env[:machine].config.boxsig
          elsif env[:env]
            config = env[:env].vagrantfile.config.boxsig
          end
          config || default_config
        end

        def default_config
          require_relative "../config"
          Config.new.tap(&:finalize!)
        end

        # boxsig looks for boxsig.json from here (the project directory), like Vagrant looks
        # for the Vagrantfile.
        def workdir_of(env)
          environment = env[:env] || (env[:machine] && env[:machine].env)
          return nil unless environment

          (environment.root_path || environment.cwd).to_s
        rescue StandardError
          nil
        end

        # Where the box came from, for the trust record: the catalog URL if any, else the box
        # URL or file. User names and passwords in URLs are left out.
        def source_of(env, box)
          candidates = [box.metadata_url, *Array(env[:box_url]).flatten]
          url = candidates.compact.map(&:to_s).find do |u|
            u =~ %r{\A[a-z][a-z0-9+.-]*://}i || File.exist?(u)
          end
          return nil if url.nil? || url.empty?
          # a local path given to `vagrant box add`, relative to where vagrant runs
          return File.expand_path(url) unless url =~ %r{\A[a-z][a-z0-9+.-]*://}i

          if url =~ %r{\A[a-z][a-z0-9+.-]*://}i
            begin
              uri = URI.parse(url)
              uri.userinfo = nil if uri.userinfo
              url = uri.to_s
            rescue URI::Error
              url = url.sub(%r{//[^/@]*@}, "//")
            end
          end
          url
        end

        def report_accepted(ui, label, report, result, version)
          who = "#{label[:name]} #{label[:version]} (#{label[:provider]})"
          if report["signed"] == false
            ui.warn("boxsig: #{who} is NOT signed; it was kept because the policy makes " \
                    "signatures optional for it.")
          else
            trust = report["trust"] ? ": #{report['trust']}" : ""
            ui.success("boxsig: verified #{who}#{trust}")
            manifest_version = report.dig("box", "version")
            if version == "0" && manifest_version && manifest_version.to_s != "0"
              ui.detail("boxsig: Vagrant installs boxes added from a file or URL as version 0; " \
                        "the signed manifest says version #{manifest_version}.")
            end
          end
          Array(report["recorded"]).each do |line|
            text = line.to_s
            if text.start_with?("first-use")
              fprs = text.sub(/\Afirst-use:\s*/, "")
              ui.warn("boxsig: FIRST USE of #{label[:name]}: trusting #{fprs} for this box name from now on " \
                      "(trust on first use). To pin it for everyone, put it in the Vagrantfile: " \
                      "config.boxsig.boxes = { #{label[:name].inspect} => { \"pin\" => [#{fprs.split(/[\s,]+/).first.inspect}] } }")
            else
              ui.detail("boxsig: recorded #{text}")
            end
          end
          Array(report["warnings"]).each { |w| ui.warn("boxsig: warning: #{w}") }
          if result.json.nil? && !result.stdout.to_s.strip.empty?
            ui.detail(result.stdout.strip)
          end
        end

        def first_error_line(result)
          [result.stderr, result.stdout].map(&:to_s).join("\n").lines.map(&:strip).reject(&:empty?).first
        end

        def hint_for(code, name)
          case code
          when "UNSIGNED"
            "\nIf this box is meant to be unsigned, allow it explicitly in the Vagrantfile:\n" \
              "  config.boxsig.boxes = { #{name.inspect} => { \"signatures\" => \"optional\" } }"
          when "UNTRUSTED_KEY", "THRESHOLD_NOT_MET"
            "\nCheck config.boxsig.boxes / config.boxsig.orgs in the Vagrantfile and boxsig.json " \
              "(`boxsig trust list` shows what is recorded)."
          when "CONFIG", "USAGE"
            "\nCheck config.boxsig in the Vagrantfile (and boxsig.json, ~/.config/boxsig/)."
          else
            ""
          end
        end

        def not_installed_consequence(label)
          "\nSignatures are the point of this plugin, so the box #{label[:name]} #{label[:version]} " \
            "(#{label[:provider]}) was removed again. To add boxes without verification, set " \
            "`config.boxsig.enabled = false` in the Vagrantfile, or uninstall the plugin " \
            "(`vagrant plugin uninstall vagrant-boxsig`)."
        end

        # Removes the box like `vagrant box remove` would: its provider directory, then the
        # version directory if that is now empty, then the name directory (with Vagrant's
        # metadata_url file) if no box of that name is left.
        def remove_box(env, box)
          dir = Pathname.new(box.directory.to_s)
          box.destroy!
          restore_forced(env, box, dir)
          version_dir = dir.parent
          begin
            version_dir.rmdir if version_dir.directory? && version_dir.children.empty?
          rescue SystemCallError => e
            @logger.warn("could not remove #{version_dir}: #{e.message}")
          end
          collection = env[:box_collection]
          if collection
            collection.clean(box.name)
          else
            name_dir = version_dir.parent
            leftovers = name_dir.directory? ? name_dir.children.reject { |c| c.basename.to_s == "metadata_url" } : []
            FileUtils.rm_rf(name_dir.to_s) if name_dir.directory? && leftovers.empty?
          end
        rescue StandardError => e
          @logger.error("could not remove the refused box at #{box.directory}: #{e.class}: #{e.message}")
          env[:ui].error("boxsig: could not remove the refused box at #{box.directory}: #{e.message}; remove it with " \
                         "`vagrant box remove #{box.name} --provider #{box.provider} --box-version #{box.version}`")
        end

        # After a refused `--force` add: put back the box that Vagrant deleted to make room
        # (kept as hard links by ForceGuard), and Vagrant's metadata_url of the name.
        def restore_forced(env, box, dir)
          backup = env[ForceGuard::ENV_KEY]
          return unless backup && File.expand_path(dir.parent.parent.to_s) == File.expand_path(backup[:source])

          old = Pathname.new(backup[:copy]).join(dir.parent.basename, dir.basename)
          return unless old.directory? && !dir.exist?

          dir.parent.mkpath
          FileUtils.mv(old.to_s, dir.to_s)
          url = Pathname.new(backup[:copy]).join("metadata_url")
          target = dir.parent.parent.join("metadata_url")
          FileUtils.cp(url.to_s, target.to_s) if url.file? && !target.exist?
          env[:ui].warn("boxsig: the box #{box.name} #{box.version} (#{box.provider}) that was installed before " \
                        "this forced add has been put back.")
        rescue StandardError => e
          @logger.error("could not restore the box replaced by --force: #{e.class}: #{e.message}")
        end
      end
    end
  end
end
