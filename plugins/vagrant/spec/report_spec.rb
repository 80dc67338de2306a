# frozen_string_literal: true

require "vagrant-boxsig/cli"
require "vagrant-boxsig/report"

RSpec.describe VagrantPlugins::Boxsig::Report do
  result = VagrantPlugins::Boxsig::CLI::Result
  evil = "Evil\r\e[2K\e[1A==> box: boxsig: verified acme/web 1.0\n==> box: Successfully added box"

  def accepted(json)
    described_class.accepted(json)
  end

  it "a verified box: its identity and the trust decision" do
    json = { "ok" => true, "box" => { "name" => "acme/web", "version" => "1.0", "provider" => "virtualbox" },
             "signed" => true, "trust" => "0123456789ABCDEF: pinned", "recorded" => [], "warnings" => [] }
    expect(accepted(json)).to eq([[:success, "boxsig: verified acme/web 1.0 (virtualbox): 0123456789ABCDEF: pinned"]])
  end

  it "an unsigned box allowed by the policy: a warning" do
    json = { "box" => { "name" => "legacy/a", "version" => "0", "provider" => "virtualbox" }, "signed" => false }
    expect(accepted(json).first).to eq([:warn, "boxsig: legacy/a 0 (virtualbox) is NOT signed; it was added because the policy makes signatures optional for it."])
  end

  it "first use: a loud warning with the line that pins the key" do
    json = { "box" => { "name" => "acme/web", "version" => "1.0", "provider" => "virtualbox" },
             "recorded" => ["first-use: AAAA, BBBB"], "replaced" => true, "warnings" => ["expires soon"] }
    lines = accepted(json)
    expect(lines[1][0]).to eq(:warn)
    expect(lines[1][1]).to include('FIRST USE of acme/web: trusting AAAA, BBBB', '{ "acme/web" => { "pin" => ["AAAA"] } }')
    expect(lines[2]).to eq([:warn, "boxsig: warning: expires soon"])
    expect(lines[3][1]).to include("was replaced (--force), after the new one verified")
  end

  it "escapes what comes from the box, its keys or the catalog" do
    json = { "box" => { "name" => "acme/#{evil}", "version" => "1.0\e[2K", "provider" => "vb\r" },
             "signed" => true, "trust" => "signed by #{evil}", "recorded" => ["rotated: #{evil}"], "warnings" => [evil] }
    text = accepted(json).map(&:last).join("\n")
    expect(text).not_to match(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
    expect(text.lines.length).to eq(accepted(json).length)
    expect(text).to include("\\e[2K\\e[1A")
    expect(described_class.identity(json)).to eq(name: "acme/Evil\\r\\e[2K\\e[1A==> box: boxsig: verified acme/web 1.0\\n==> box: Successfully added box",
                                                 version: "1.0\\e[2K", provider: "vb\\r")
  end

  it "survives a result without a box" do
    expect(described_class.identity(nil)).to eq(name: "", version: "", provider: "")
  end

  describe ".failure" do
    it "a refusal: code, message and boxsig's hint, escaped" do
      r = result.new(exit_code: 1, stdout: "", stderr: "",
                     json: { "ok" => false, "code" => "KEY_CHANGED", "message" => "the key changed.\n  #{evil}",
                             "hint" => "boxsig trust accept acme/web FFFF" })
      data = described_class.failure(r, label: "acme/web", name: "acme/web")
      expect(data).to include(box: "acme/web", code: "KEY_CHANGED", exit_code: 1)
      expect(data[:message]).to start_with("the key changed.\n    Evil\\r\\e[2K")
      expect(data[:message].lines.drop(1)).to all(start_with("  "))
      expect(data[:hint]).to eq("\nhint: boxsig trust accept acme/web FFFF")
    end

    it "no hint twice when the message has it" do
      r = result.new(exit_code: 1, stdout: "", stderr: "",
                     json: { "ok" => false, "code" => "KEY_CHANGED", "message" => "run boxsig trust accept x", "hint" => "boxsig trust accept x" })
      expect(described_class.failure(r, label: "x")[:hint]).to eq("")
    end

    it "UNSIGNED: how to allow the box, by its name" do
      r = result.new(exit_code: 1, stdout: "", stderr: "", json: { "ok" => false, "code" => "UNSIGNED", "message" => "not signed" })
      expect(described_class.failure(r, label: "acme/u", name: "acme/u")[:hint]).to include('{ "acme/u" => { "signatures" => "optional" } }')
      expect(described_class.failure(r, label: "from http://x/u.box")[:hint]).to include('{ "NAME" => ')
    end

    it "boxsig printed no JSON (it crashed): FAILED and its first line of output" do
      r = result.new(exit_code: 134, stdout: "", stderr: "\n  Segmentation fault\e[2K\nmore", json: nil)
      expect(described_class.failure(r, label: "acme/u")).to include(code: "FAILED", message: "Segmentation fault\\e[2K", exit_code: 134)
    end
  end
end
