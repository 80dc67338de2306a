# frozen_string_literal: true

require "json"
require "vagrant/util/env"
require "vagrant/util/which"

module VagrantPlugins
  module Boxsig
    # Finds and runs the boxsig command-line tool.
    module CLI
      Result = Struct.new(:exit_code, :json, :stdout, :stderr, keyword_init: true) do
        # boxsig's code for the outcome: "OK", a refusal or failure code, or FAILED when
        # boxsig printed no result.
        def code
          return "OK" if ok?

          (json && json["code"]).to_s.then { |c| c.empty? ? "FAILED" : c }
        end

        def ok?
          exit_code.zero? && json.is_a?(Hash) && json["ok"] == true
        end

        def message
          m = json && json["message"]
          return m.to_s if m

          line = [stderr, stdout].map(&:to_s).join("\n").lines.map(&:strip).reject(&:empty?).first
          line || "boxsig exited with code #{exit_code} and printed no result"
        end
      end

      class Missing < StandardError; end

      # Raised by run when the action was interrupted (Ctrl-C) and boxsig was stopped.
      class Interrupted < StandardError; end

      STOP_GRACE_SECONDS = 5

      module_function

      # The command to run, as an Array: config.boxsig.binary (a path or an Array such as
      # ["node", "/path/to/main.js"]) or `boxsig` on the PATH. Raises Missing with a
      # description of where it looked.
      def command(binary)
        parts = binary.nil? ? ["boxsig"] : Array(binary).map(&:to_s)
        exe = parts.first.to_s
        raise Missing, " (config.boxsig.binary is empty)" if exe.empty?

        [locate(exe, binary), *parts.drop(1)]
      end

      def locate(exe, binary)
        if exe.include?("/") || exe.include?("\\")
          path = File.expand_path(exe)
          raise Missing, " at #{path} (config.boxsig.binary)" unless File.file?(path) && File.executable?(path)

          return path
        end
        found = Vagrant::Util::Which.which(exe)
        return found if found

        raise Missing, binary.nil? ? " on the PATH" : " on the PATH (config.boxsig.binary = #{binary.inspect})"
      end

      # Runs boxsig with args in workdir, with env added to its environment; stdin is
      # /dev/null, stdout and stderr are captured, and stdout is parsed as boxsig's one
      # JSON object. boxsig stays in Vagrant's process group, so a Ctrl-C on the terminal
      # reaches it directly; when `interrupted` (checked a few times a second) becomes
      # true, boxsig is stopped (TERM, then KILL) and Interrupted is raised. boxsig
      # cleans up after itself on TERM; its staging directory is never visible to Vagrant.
      def run(cmd, args, workdir: nil, env: {}, interrupted: nil)
        out_r, out_w = IO.pipe
        err_r, err_w = IO.pipe
        pid = spawn_process(cmd, args, workdir, env, out: out_w, err: err_w)
        out_w.close
        err_w.close
        stdout, stderr = collect(out_r, err_r, interrupted)
        _, status = Process.wait2(pid)
        pid = nil
        Result.new(exit_code: exit_code_of(status), json: parse_json(stdout), stdout: stdout, stderr: stderr)
      ensure
        [out_r, err_r, out_w, err_w].each { |io| io.close if io && !io.closed? }
        stop(pid) if pid
      end

      # Runs boxsig attached to the terminal (prompts, progress and output go straight to
      # the user); returns the exit code. For the `vagrant boxsig` commands.
      def run_attached(cmd, args, workdir: nil)
        pid = spawn_process(cmd, args, workdir, {})
        _, status = Process.wait2(pid)
        exit_code_of(status)
      end

      def spawn_process(cmd, args, workdir, env, **redirects)
        opts = redirects.dup
        opts[:chdir] = workdir.to_s if workdir && File.directory?(workdir.to_s)
        opts[:in] = File::NULL unless redirects.empty?
        Vagrant::Util::Env.with_original_env { Process.spawn(env, *cmd, *args, **opts) }
      rescue SystemCallError => e
        raise Missing, " (it could not be started: #{e.message})"
      end

      # Reads both pipes to their end, checking `interrupted` between reads.
      def collect(out_r, err_r, interrupted)
        data = { out_r => +"", err_r => +"" }
        open = [out_r, err_r]
        until open.empty?
          raise Interrupted if interrupted&.call

          ready, = IO.select(open, nil, nil, 0.2)
          Array(ready).each do |io|
            chunk = io.read_nonblock(64 * 1024, exception: false)
            next if chunk == :wait_readable

            chunk.nil? ? open.delete(io) : data[io] << chunk
          end
        end
        [data[out_r], data[err_r]]
      end

      # TERM, then KILL after a grace period; reaps the process.
      def stop(pid)
        Process.kill("TERM", pid)
        deadline = Time.now + STOP_GRACE_SECONDS
        while Time.now < deadline
          return if Process.wait(pid, Process::WNOHANG)

          sleep 0.05
        end
        Process.kill("KILL", pid)
        Process.wait(pid)
      rescue Errno::ESRCH, Errno::ECHILD
        nil
      end

      def exit_code_of(status)
        status.exitstatus || (128 + (status.termsig || 0))
      end

      def parse_json(stdout)
        parsed = JSON.parse(stdout)
        parsed.is_a?(Hash) ? parsed : nil
      rescue JSON::ParserError
        nil
      end
    end
  end
end
