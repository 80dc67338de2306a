# frozen_string_literal: true

require "json"
require "vagrant/util/env"
require "vagrant/util/subprocess"
require "vagrant/util/which"

module VagrantPlugins
  module Boxsig
    # Finds and runs the boxsig command-line tool.
    module CLI
      Result = Struct.new(:exit_code, :json, :stdout, :stderr, keyword_init: true)

      class Missing < StandardError; end

      module_function

      # The command to run, as an Array: config.boxsig.binary (a path or an Array such as
      # ["node", "/path/to/main.js"]) or `boxsig` on the PATH. Raises Missing with a
      # description of where it looked.
      def command(binary)
        parts = binary.nil? ? ["boxsig"] : Array(binary).map(&:to_s)
        exe = parts.first.to_s
        if exe.empty?
          raise Missing, " (config.boxsig.binary is empty)"
        elsif exe.include?("/") || exe.include?("\\")
          path = File.expand_path(exe)
          unless File.file?(path) && File.executable?(path)
            raise Missing, " at #{path} (config.boxsig.binary)"
          end

          [path, *parts.drop(1)]
        else
          found = Vagrant::Util::Which.which(exe)
          unless found
            where = binary.nil? ? " on the PATH" : " on the PATH (config.boxsig.binary = #{binary.inspect})"
            raise Missing, where
          end

          [found, *parts.drop(1)]
        end
      end

      # Runs boxsig with args; with json: true parses the one JSON object it prints on stdout
      # (nil if stdout is not JSON). Output is captured, not streamed.
      def run(cmd, args, workdir: nil, json: false, env: nil)
        opts = {}
        opts[:workdir] = workdir.to_s if workdir && File.directory?(workdir.to_s)
        opts[:env] = env if env
        result = Vagrant::Util::Subprocess.execute(*cmd, *args, opts)
        parsed = nil
        if json
          begin
            parsed = JSON.parse(result.stdout)
            parsed = nil unless parsed.is_a?(Hash)
          rescue JSON::ParserError
            parsed = nil
          end
        end
        Result.new(exit_code: result.exit_code, json: parsed, stdout: result.stdout, stderr: result.stderr)
      rescue Vagrant::Util::Subprocess::LaunchError, Errno::ENOENT, Errno::EACCES => e
        raise Missing, " (it could not be started: #{e.message})"
      end

      # Runs boxsig attached to the terminal (prompts, progress and output go straight to
      # the user); returns the exit code.
      def run_attached(cmd, args, workdir: nil)
        opts = {}
        opts[:chdir] = workdir.to_s if workdir && File.directory?(workdir.to_s)
        pid = nil
        Vagrant::Util::Env.with_original_env do
          pid = Process.spawn(*cmd, *args, **opts)
        end
        _, status = Process.wait2(pid)
        status.exitstatus || (128 + (status.termsig || 0))
      rescue Errno::ENOENT, Errno::EACCES => e
        raise Missing, " (it could not be started: #{e.message})"
      end
    end
  end
end
