# frozen_string_literal: true

require "log4r"
require "vagrant/util/credential_scrubber"
require "vagrant/util/downloader"
require_relative "../add_request"
require_relative "../cli"
require_relative "../report"
require_relative "../settings"
require_relative "../text"

module VagrantPlugins
  module Boxsig
    module Action
      # Prepended to Vagrant::Action::Builtin::BoxAdd, the step that every box add of
      # Vagrant runs (`vagrant box add`, `vagrant box update`, and HandleBox in
      # `vagrant up`). With the plugin enabled, Vagrant's own download, checksum and
      # extraction never run: AddBox hands the whole add to `boxsig add`, which downloads,
      # checks the checksum, verifies and extracts in one pass into a staging directory and
      # moves the box into Vagrant's boxes directory with one rename once every check
      # passed. The rest of the middleware chain runs as after Vagrant's add
      # (env[:box_added] is set). With config.boxsig.enabled = false, Vagrant's own add
      # runs, after a loud warning.
      module TakeOver
        def call(env)
          Plugin.init!
          config = Settings.for_action(env)
          return AddBox.unverified(env) { super(env) } unless config.enabled

          AddBox.new(env, config).run
          @app.call(env)
        end
      end

      # One add through boxsig.
      class AddBox
        # With verification turned off: Vagrant's own add, announced before and after.
        def self.unverified(env)
          ui = env[:ui]
          label = Text.clean(Vagrant::Util::CredentialScrubber.scrub((env[:box_name] || Array(env[:box_url]).flatten.first).to_s))
          ui.warn("boxsig: signature verification is turned off (config.boxsig.enabled = false): Vagrant " \
                  "adds #{label} itself, UNVERIFIED, and extracts it before anything has checked it.")
          result = yield
          box = env[:box_added]
          if box
            ui.warn("boxsig: #{Text.clean(box.name)} #{Text.clean(box.version)} (#{Text.clean(box.provider)}) was " \
                    "added UNVERIFIED (config.boxsig.enabled = false).")
          end
          result
        end

        def initialize(env, config)
          @env = env
          @config = config
          @ui = env[:ui]
          @logger = Log4r::Logger.new("vagrant::plugins::boxsig::add_box")
        end

        def run
          raise Vagrant::Errors::VagrantInterrupt if @env[:interrupted]

          request = build_request
          cmd = Settings.command(@config, consequence: not_installed_consequence(request.label))
          @ui.output("Adding the box #{Text.clean(request.label)} with boxsig: download, checksum, signature " \
                     "check and extraction in one pass; Vagrant sees the box only once it is verified.")
          result = first_success(cmd, request)
          report_success(result.json)
          @env[:box_added] = find_box(result.json)
        end

        private

        def build_request
          AddRequest.build(request_options, vagrant: VagrantAuthentication.new(@env))
        rescue AddRequest::Unsupported => e
          label = @env[:box_name] || Array(@env[:box_url]).first
          raise Errors::Unsupported, box: Text.clean(scrub(label)), reason: Text.clean(e.message)
        end

        # What Vagrant asked for, from the action environment (see BoxAdd and HandleBox).
        def request_options
          {
            urls: Array(@env[:box_url]),
            name: @env[:box_name],
            provider: @env[:box_provider],
            version: @env[:box_version],
            architecture: @env[:box_architecture],
            checksum: @env[:box_checksum],
            checksum_type: @env[:box_checksum_type],
            force: @env[:box_force],
            insecure: @env[:box_download_insecure],
            ca_cert: @env[:box_download_ca_cert],
            ca_path: @env[:box_download_ca_path],
            client_cert: @env[:box_download_client_cert],
            location_trusted: @env[:box_download_location_trusted],
            extra_download_options: @env[:box_extra_download_options],
            token_by_url: ENV["VAGRANT_SERVER_ACCESS_TOKEN_BY_URL"],
            server_url: Vagrant.server_url(@env[:box_server_url]),
            vagrant_home: vagrant_home,
            policy_json: @config.policy_json,
            cwd: Dir.pwd,
          }
        end

        # boxsig installs into <home>/boxes, the directory of Vagrant's box collection.
        def vagrant_home
          collection = @env[:box_collection]
          return collection.directory.parent.to_s if collection && collection.directory.basename.to_s == "boxes"

          (@env[:env] ? @env[:env].home_path : Vagrant.user_data_path).to_s
        end

        # Tries the URLs in turn, as Vagrant does: a download error moves on to the next
        # URL; anything else (a refusal above all) ends the add.
        def first_success(cmd, request)
          request.sources.each_with_index do |source, i|
            @ui.detail("Source: #{Text.clean(scrub(source.display))}")
            result = run_boxsig(cmd, request, source)
            return result if result.ok?

            last = i == request.sources.length - 1
            fail_with(result, request) if last || result.code != "NETWORK"
            @ui.error(I18n.t("vagrant.box_download_error", message: Text.clean_block(result.message)))
          end
        end

        def run_boxsig(cmd, request, source)
          args = request.args_for(source)
          @logger.info("running #{cmd.inspect} #{args.inspect}")
          result = CLI.run(cmd, args, workdir: Settings.workdir(@env), env: request.process_env,
                                      interrupted: -> { @env[:interrupted] })
          @logger.debug("boxsig exit #{result.exit_code}\nstdout: #{result.stdout}\nstderr: #{result.stderr}")
          result
        rescue CLI::Interrupted
          raise Vagrant::Errors::VagrantInterrupt
        rescue CLI::Missing => e
          raise Errors::NotInstalled, where: e.message, consequence: not_installed_consequence(request.label)
        end

        def fail_with(result, request)
          already_installed(result) if result.code == "EXISTS"
          data = Report.failure(result, label: request.label, name: request.name)
          raise Errors::Refused, data if result.exit_code == 1

          raise Errors::AddFailed, data
        end

        # Vagrant's own error, which HandleBox expects when two machines add one box.
        def already_installed(result)
          details = (result.json && result.json["details"]).is_a?(Hash) ? result.json["details"] : {}
          raise Vagrant::Errors::BoxAlreadyExists,
                name: Text.clean(details["name"] || @env[:box_name]),
                provider: Text.clean(details["provider"] || @env[:box_provider]),
                version: Text.clean(details["version"] || @env[:box_version])
        end

        def report_success(json)
          Report.accepted(json).each { |level, line| @ui.public_send(level, line) }
          id = Report.identity(json)
          @ui.success(I18n.t("vagrant.box_added", name: id[:name], version: id[:version], provider: id[:provider]))
        end

        def find_box(json)
          box = json["box"]
          collection = @env[:box_collection]
          return nil unless collection && box.is_a?(Hash)

          collection.find(box["name"].to_s, box["provider"].to_s.to_sym, box["version"].to_s)
        end

        def not_installed_consequence(label)
          "\nSignatures are the point of this plugin, so nothing was added: #{Text.clean(scrub(label))}. " \
            "To let Vagrant add boxes itself, unverified, set `config.boxsig.enabled = false` in the " \
            "Vagrantfile, or uninstall the plugin (`vagrant plugin uninstall vagrant-boxsig`)."
        end

        def scrub(text)
          Vagrant::Util::CredentialScrubber.scrub(text.to_s)
        end
      end

      # AddRequest's window on Vagrant's box authentication: the authenticate_box_url hook
      # (which rewrites box URLs; by default it removes access_token parameters) and the
      # authenticate_box_downloader hook (which adds the Vagrant Cloud token as an
      # `Authorization: Bearer` header for the box server's host). The headers are read
      # from a Downloader that is never started.
      class VagrantAuthentication
        def initialize(env)
          @env = env
        end

        def authenticate_urls(urls)
          return urls unless @env[:hook]

          Array(@env[:hook].call(:authenticate_box_url, box_urls: urls)[:box_urls])
        end

        def headers_for(url)
          return [] unless @env[:hook]

          downloader = Vagrant::Util::Downloader.new(url, File::NULL, headers: [])
          @env[:hook].call(:authenticate_box_downloader, downloader: downloader)
          Array(downloader.headers).map(&:to_s)
        end
      end
    end
  end
end
