# frozen_string_literal: true

require "tmpdir"
require "vagrant-boxsig/cli"

RSpec.describe VagrantPlugins::Boxsig::CLI do
  around do |example|
    Dir.mktmpdir { |dir| @dir = dir; example.run }
  end

  def script(body)
    path = File.join(@dir, "fake-boxsig")
    File.write(path, "#!/bin/sh\n#{body}\n")
    File.chmod(0o755, path)
    [path]
  end

  describe ".command" do
    it "a path that is not an executable is missing, saying where" do
      expect { described_class.command("/nonexistent/boxsig") }.to raise_error(described_class::Missing, %r{at /nonexistent/boxsig})
    end

    it "nothing of that name on the PATH" do
      expect { described_class.command("boxsig-nonexistent-#{$$}") }.to raise_error(described_class::Missing, /on the PATH/)
    end

    it "an Array keeps its arguments" do
      expect(described_class.command(["/bin/sh", "-c", "x"])).to eq(["/bin/sh", "-c", "x"])
    end
  end

  describe ".run" do
    it "parses boxsig's JSON result, gets its exit code and stderr, in its working directory and environment" do
      cmd = script('echo "{\"ok\": true, \"dir\": \"$(pwd)\", \"h\": \"$BOXSIG_HTTP_HEADERS\"}"; echo progress >&2')
      r = described_class.run(cmd, [], workdir: @dir, env: { "BOXSIG_HTTP_HEADERS" => "x" })
      expect(r.ok?).to be(true)
      expect(r.code).to eq("OK")
      expect(r.json).to include("dir" => File.realpath(@dir), "h" => "x")
      expect(r.stderr).to eq("progress\n")
    end

    it "a refusal: its code and message" do
      r = described_class.run(script('echo \'{"ok": false, "code": "TAMPERED", "message": "m"}\'; exit 1'), [])
      expect([r.ok?, r.code, r.message, r.exit_code]).to eq([false, "TAMPERED", "m", 1])
    end

    it "exit 0 without a JSON result is not a success" do
      r = described_class.run(script("echo hello"), [])
      expect([r.ok?, r.code, r.message]).to eq([false, "FAILED", "hello"])
    end

    it "killed by a signal: 128 + the signal" do
      expect(described_class.run(script("kill -9 $$"), []).exit_code).to eq(137)
    end

    it "stdin is empty (boxsig add never prompts)" do
      r = described_class.run(script('read x; echo "{\"ok\": true, \"x\": \"$x\"}"'), [])
      expect(r.json["x"]).to eq("")
    end

    it "interrupted: boxsig is stopped with TERM and Interrupted raised" do
      marker = File.join(@dir, "term")
      cmd = script("trap 'echo term > #{marker}; exit 143' TERM; while :; do sleep 0.05; done")
      started = Time.now
      expect { described_class.run(cmd, [], interrupted: -> { Time.now - started > 0.3 }) }.to raise_error(described_class::Interrupted)
      expect(File.read(marker)).to eq("term\n")
    end

    it "a command that cannot be started is missing" do
      path = File.join(@dir, "not-executable")
      File.write(path, "")
      expect { described_class.run([path], []) }.to raise_error(described_class::Missing, /could not be started/)
    end
  end
end
