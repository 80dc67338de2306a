# frozen_string_literal: true

require "fileutils"
require "log4r"
require "securerandom"

module VagrantPlugins
  module Boxsig
    module Action
      # Middleware placed right before Vagrant::Action::Builtin::BoxAdd.
      #
      # With --force, Vagrant deletes an installed box of the same name, version and
      # provider before it extracts the new one, i.e. before boxsig can judge the new box.
      # So that a refused forced add does not also cost the box that was there, this keeps
      # a hard-linked copy of the box name's directory (no data is copied) while BoxAdd and
      # the verification run; VerifyBox puts the old box back when it refuses the new one.
      # Only possible when the box name is known up front (`--name`, or a name rather than
      # a URL); a forced add from a catalog URL without --name is not guarded.
      class ForceGuard
        ENV_KEY = :boxsig_force_backup

        def initialize(app, _env)
          @app = app
          @logger = Log4r::Logger.new("vagrant::plugins::boxsig::force_guard")
        end

        def call(env)
          backup = env[:box_force] ? make_backup(env) : nil
          env[ENV_KEY] = backup
          begin
            @app.call(env)
          ensure
            env.delete(ENV_KEY)
            FileUtils.rm_rf(backup[:root]) if backup
          end
        end

        private

        def make_backup(env)
          name = env[:box_name].to_s
          collection = env[:box_collection]
          return nil if name.empty? || collection.nil? || name =~ %r{\A[a-z][a-z0-9+.-]*://}i

          source = Pathname.new(collection.directory.to_s).join(name.gsub("/", "-VAGRANTSLASH-"))
          return nil unless source.directory?

          tmp = Pathname.new((env[:tmp_path] || collection.directory.parent.join("tmp")).to_s)
          root = tmp.join("boxsig-force-#{SecureRandom.hex(6)}")
          root.mkpath
          copy = root.join(source.basename)
          FileUtils.cp_lr(source.to_s, copy.to_s)
          @logger.info("kept a hard-linked copy of #{source} in #{copy}")
          { root: root.to_s, source: source.to_s, copy: copy.to_s }
        rescue SystemCallError, NotImplementedError => e
          # e.g. the tmp directory is on another file system (no hard links)
          @logger.warn("no backup of #{name} before a forced add: #{e.message}")
          FileUtils.rm_rf(root.to_s) if root
          nil
        end
      end
    end
  end
end
