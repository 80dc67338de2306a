# frozen_string_literal: true

require "json"
require "tmpdir"
require "vagrant-boxsig/add_request"

RSpec.describe VagrantPlugins::Boxsig::AddRequest do
  around do |example|
    Dir.mktmpdir do |dir|
      @dir = dir
      File.write(File.join(dir, "ubuntu.box"), "box")
      Dir.mkdir(File.join(dir, "sub"))
      example.run
    end
  end

  let(:server) { "https://vagrantcloud.com/api/v2/vagrant" }

  def build(**opts)
    vagrant = opts.delete(:vagrant) || described_class::NoAuthentication.new
    defaults = { cwd: @dir, server_url: server, vagrant_home: "/home/u/.vagrant.d" }
    described_class.build(defaults.merge(opts), vagrant: vagrant)
  end

  def args(opts = {})
    request = build(**opts)
    request.args_for(request.sources.first)
  end

  # Vagrant's authentication hooks, as the cloud plugin behaves by default: the access
  # token becomes a Bearer header for the box server's host, access_token parameters
  # are removed from URLs.
  class FakeVagrant
    attr_reader :asked

    def initialize(token_host)
      @token_host = token_host
      @asked = []
    end

    def authenticate_urls(urls)
      urls.map { |u| u.sub(/[?&]access_token=[^&]*/, "") }
    end

    def headers_for(url)
      @asked << url
      URI.parse(url).host == @token_host ? ["Authorization: Bearer TOKEN"] : []
    end
  end

  describe "sources, resolved as Vagrant's BoxAdd resolves them" do
    it "a relative path: the absolute path, relative to the current directory" do
      request = build(urls: ["ubuntu.box"], name: "acme/ubuntu")
      expect(request.sources.map(&:location)).to eq([File.join(@dir, "ubuntu.box")])
      expect(request.sources.first.display).to eq("file://#{File.join(@dir, 'ubuntu.box')}")
    end

    it "a relative path from a subdirectory" do
      request = build(urls: ["../ubuntu.box"], cwd: File.join(@dir, "sub"))
      expect(request.sources.first.location).to eq(File.join(@dir, "ubuntu.box"))
    end

    it "a file:// URL, percent-escapes decoded" do
      File.write(File.join(@dir, "a b.box"), "box")
      request = build(urls: ["file://#{@dir}/a%20b.box"])
      expect(request.sources.first.location).to eq(File.join(@dir, "a b.box"))
    end

    it "an http(s) URL stays a URL" do
      expect(args(urls: ["https://boxes.example/u.box"])[1]).to eq("https://boxes.example/u.box")
    end

    it "a shorthand org/name: the catalog on the box server, and the name it must have" do
      request = build(urls: ["acme/ubuntu"])
      expect(request.sources.first.location).to eq("#{server}/acme/ubuntu")
      expect(request.options.each_slice(1).to_a.flatten).to include("--name", "acme/ubuntu")
      expect(request.label).to eq("acme/ubuntu")
    end

    it "a shorthand that names an existing file is the file" do
      Dir.mkdir(File.join(@dir, "acme"))
      File.write(File.join(@dir, "acme", "ubuntu"), "box")
      expect(build(urls: ["acme/ubuntu"]).sources.first.location).to eq(File.join(@dir, "acme", "ubuntu"))
    end

    it "config.vm.box_server_url (via server_url) for shorthands" do
      expect(build(urls: ["acme/u"], server_url: "http://registry.local:8080/").sources.first.location)
        .to eq("http://registry.local:8080/acme/u")
    end

    it "the name given wins over the shorthand" do
      request = build(urls: ["acme/ubuntu"], name: "acme/other")
      expect(request.options).to include("--name", "acme/other")
      expect(request.label).to eq("acme/other")
    end

    it "a list of URLs, in order" do
      request = build(urls: [["http://a.example/u.box", "ubuntu.box"]])
      expect(request.sources.map(&:location)).to eq(["http://a.example/u.box", File.join(@dir, "ubuntu.box")])
    end

    it "an unknown scheme is refused" do
      expect { build(urls: ["ftp://a.example/u.box"]) }.to raise_error(described_class::Unsupported, /not ftp:\/\//)
    end

    it "no URL at all is refused" do
      expect { build(urls: [nil, ""]) }.to raise_error(described_class::Unsupported, /no box URL/)
    end

    it "the label of a box without a name is where it comes from" do
      expect(build(urls: ["https://b.example/c.json"]).label).to eq("from https://b.example/c.json")
    end
  end

  describe "credentials" do
    it "user info in a URL becomes a Basic header for that host, and leaves the URL" do
      request = build(urls: ["https://al%40ice:s3cr%3At@boxes.example/u.box"])
      expect(request.sources.first.location).to eq("https://boxes.example/u.box")
      expect(request.args_for(request.sources.first).join(" ")).not_to include("s3cr")
      header = request.headers.fetch("boxes.example").first
      expect(header).to eq("Authorization: Basic #{Base64.strict_encode64('al@ice:s3cr:t')}")
    end

    it "Vagrant's token header for the server host, also for URLs the catalog will name" do
      fake = FakeVagrant.new("vagrantcloud.com")
      request = build(urls: ["acme/ubuntu"], vagrant: fake)
      expect(request.headers).to eq("vagrantcloud.com" => ["Authorization: Bearer TOKEN"])
      expect(fake.asked).to include(server)
    end

    it "headers only for the hosts they are for (the server's, where a catalog may point)" do
      request = build(urls: ["https://mirror.example/u.box"], vagrant: FakeVagrant.new("vagrantcloud.com"))
      expect(request.headers.keys).to eq(["vagrantcloud.com"])
    end

    it "a local box file (too large to be a catalog) asks for no server headers" do
      fake = FakeVagrant.new("vagrantcloud.com")
      big = File.join(@dir, "big.box")
      File.open(big, "w") { |f| f.truncate(21 * 1024 * 1024) }
      expect(build(urls: ["big.box"], vagrant: fake).headers).to eq({})
      expect(fake.asked).to eq([])
    end

    it "a local catalog may name boxes on the server: its headers are ready" do
      fake = FakeVagrant.new("vagrantcloud.com")
      expect(build(urls: ["ubuntu.box"], vagrant: fake).headers.keys).to eq(["vagrantcloud.com"])
    end

    it "no headers, no environment variable" do
      request = build(urls: ["https://mirror.example/u.box"], vagrant: FakeVagrant.new("elsewhere.example"))
      expect(request.headers).to eq({})
      expect(request.process_env).to eq({})
    end

    it "URLs go through Vagrant's URL authentication (access_token parameters removed)" do
      request = build(urls: ["https://vagrantcloud.com/acme/u?access_token=abc"], vagrant: FakeVagrant.new("x"))
      expect(request.sources.first.location).to eq("https://vagrantcloud.com/acme/u")
    end

    it "user info wins over a hook's Authorization for the same host" do
      request = build(urls: ["https://u:p@vagrantcloud.com/acme/u"], vagrant: FakeVagrant.new("vagrantcloud.com"))
      expect(request.headers["vagrantcloud.com"].length).to eq(1)
      expect(request.headers["vagrantcloud.com"].first).to start_with("Authorization: Basic ")
    end

    it "headers reach boxsig in its environment as JSON, never on its command line" do
      request = build(urls: ["acme/ubuntu"], vagrant: FakeVagrant.new("vagrantcloud.com"))
      expect(JSON.parse(request.process_env.fetch("BOXSIG_HTTP_HEADERS")))
        .to eq("vagrantcloud.com" => ["Authorization: Bearer TOKEN"])
      expect(request.args_for(request.sources.first).join(" ")).not_to include("TOKEN")
    end

    it "VAGRANT_SERVER_ACCESS_TOKEN_BY_URL is refused" do
      expect { build(urls: ["acme/u"], token_by_url: "1") }.to raise_error(described_class::Unsupported, /ACCESS_TOKEN_BY_URL/)
    end
  end

  describe "options" do
    it "always: the Vagrant home and --json" do
      expect(args(urls: ["ubuntu.box"])).to eq(["add", File.join(@dir, "ubuntu.box"), "--vagrant-home", "/home/u/.vagrant.d", "--json"])
    end

    {
      "--name" => [{ name: "acme/u" }, ["--name", "acme/u"]],
      "--box-version (a constraint)" => [{ version: ">= 1.2, < 2" }, ["--box-version", ">= 1.2, < 2"]],
      "--provider (a Symbol)" => [{ provider: :virtualbox }, ["--provider", "virtualbox"]],
      "--provider (a list of one)" => [{ provider: [:libvirt] }, ["--provider", "libvirt"]],
      "--force" => [{ force: true }, ["--force"]],
      "--insecure" => [{ insecure: true }, ["--insecure"]],
      "--policy-json" => [{ policy_json: '{"boxes":{}}' }, ["--policy-json", '{"boxes":{}}']],
      "--architecture" => [{ architecture: "arm64" }, ["--architecture", "arm64"]],
      "--architecture (a Symbol)" => [{ architecture: :amd64 }, ["--architecture", "amd64"]],
    }.each do |what, (opts, expected)|
      it what do
        list = args({ urls: ["ubuntu.box"] }.merge(opts))
        i = list.index(expected.first)
        expect(i).not_to be_nil, list.inspect
        expect(list[i, expected.length]).to eq(expected)
      end
    end

    {
      "no architecture" => { architecture: nil },
      "Vagrant 2.4's default :auto (boxsig chooses the host's, as Vagrant does)" => { architecture: :auto },
      "no --force when false" => { force: false },
      "no version when empty" => { version: "" },
    }.each do |what, opts|
      it what do
        expect(args({ urls: ["ubuntu.box"] }.merge(opts))).to eq(args(urls: ["ubuntu.box"]))
      end
    end

    it "TLS files, relative to the current directory" do
      list = args(urls: ["ubuntu.box"], ca_cert: "ca.pem", ca_path: "/etc/ssl/certs", client_cert: "me.pem")
      expect(list.each_cons(2).to_a).to include(["--cacert", File.join(@dir, "ca.pem")],
                                                ["--capath", "/etc/ssl/certs"], ["--cert", File.join(@dir, "me.pem")])
    end

    it "several providers are refused (boxsig adds one box for one provider)" do
      expect { build(urls: ["ubuntu.box"], provider: %w[vmware_desktop vmware_fusion]) }
        .to raise_error(described_class::Unsupported, /--provider vmware_desktop/)
    end

    it "--location-trusted is refused" do
      expect { build(urls: ["ubuntu.box"], location_trusted: true) }.to raise_error(described_class::Unsupported, /location-trusted/)
    end

    it "extra curl options are refused" do
      expect { build(urls: ["ubuntu.box"], extra_download_options: ["--limit-rate", "1k"]) }
        .to raise_error(described_class::Unsupported, /box_extra_download_options/)
    end

    it "an empty list of extra curl options is fine" do
      expect { build(urls: ["ubuntu.box"], extra_download_options: []) }.not_to raise_error
    end
  end

  describe "checksums" do
    {
      ["ab" * 16, nil] => "md5",
      ["ab" * 20, nil] => "sha1",
      ["ab" * 32, nil] => "sha256",
      ["ab" * 48, ""] => "sha384",
      ["ab" * 64, nil] => "sha512",
      ["ab" * 32, :sha256] => "sha256",
      ["ab" * 32, "SHA512"] => "sha512",
    }.each do |(sum, type), kind|
      it "#{sum.length} hex digits, type #{type.inspect} -> #{kind}" do
        expect(described_class.checksum_args(sum, type)).to eq(["--checksum", sum, "--checksum-type", kind])
      end
    end

    it "no checksum, no options (whatever the type)" do
      expect(described_class.checksum_args(nil, :sha256)).to eq([])
      expect(described_class.checksum_args("  ", nil)).to eq([])
    end

    it "an unknown type is refused" do
      expect { described_class.checksum_args("ab" * 32, :crc32) }.to raise_error(described_class::Unsupported, /"crc32"/)
    end

    it "a checksum whose type cannot be told from its length is refused" do
      expect { described_class.checksum_args("abc", nil) }.to raise_error(described_class::Unsupported, /no type/)
    end
  end
end
