# frozen_string_literal: true

require "base64"
require "cgi"
require "json"
require "uri"

module VagrantPlugins
  module Boxsig
    # Turns what Vagrant asks of its BoxAdd step (the action environment of `vagrant box
    # add`, `vagrant box update` and the add of `vagrant up`) into `boxsig add` command
    # lines: one per box URL to try, the options, and the HTTP headers Vagrant would send.
    # Pure: Vagrant itself is reached only through the `vagrant` adapter given to build
    # (authenticate_urls(urls) -> urls, headers_for(url) -> ["Name: value", ...]), so the
    # rules below are unit-tested in spec/add_request_spec.rb.
    #
    # What boxsig add cannot do is refused here (Unsupported), before anything is
    # downloaded, rather than handed back to Vagrant's unverified add.
    module AddRequest
      class Unsupported < StandardError; end

      # location: what boxsig add gets (a path or a URL without credentials);
      # display: the same for people (file:// URL for a path).
      Source = Struct.new(:location, :display, keyword_init: true)

      # sources: the URLs to try in turn (Vagrant tries each URL of a list until one
      # downloads); options: the rest of the boxsig add arguments; headers: host =>
      # ["Name: value", ...], for BOXSIG_HTTP_HEADERS; name: the box name when Vagrant
      # knows it; label: how to name the box in messages before boxsig has said what it
      # is (its name, or "from URL").
      Request = Struct.new(:sources, :options, :headers, :name, :label, keyword_init: true) do
        def args_for(source)
          ["add", source.location, *options]
        end

        # The environment of the boxsig process: the headers, never on its command line.
        def process_env
          headers.empty? ? {} : { "BOXSIG_HTTP_HEADERS" => JSON.generate(headers) }
        end
      end

      CHECKSUM_TYPES = %w[md5 sha1 sha256 sha384 sha512].freeze
      CHECKSUM_TYPE_BY_LENGTH = { 32 => "md5", 40 => "sha1", 64 => "sha256", 96 => "sha384", 128 => "sha512" }.freeze
      URL_RE = %r{\A[a-z0-9]+:}i.freeze
      SHORTHAND_RE = %r{\A[^/]+/[^/]+\z}.freeze

      # A null adapter: no URL rewriting, no extra headers.
      class NoAuthentication
        def authenticate_urls(urls)
          urls
        end

        def headers_for(_url)
          []
        end
      end

      module_function

      # opts: the values of Vagrant's action environment (see AddBox#request_options).
      def build(opts, vagrant: NoAuthentication.new)
        refuse_unsupported(opts)
        cwd = opts[:cwd] || Dir.pwd
        headers = {}
        resolved = Array(opts[:urls]).flatten.compact.map(&:to_s).reject(&:empty?).map do |u|
          resolve(u, cwd: cwd, server_url: opts[:server_url])
        end
        raise Unsupported, "no box URL or name was given" if resolved.empty?

        shorthand = resolved.find { |r| r[:shorthand] }
        sources = authenticate(resolved, vagrant, headers, opts[:server_url])
        name = opts[:name].to_s.empty? ? shorthand&.dig(:shorthand) : opts[:name].to_s
        Request.new(sources: sources, options: options(opts, name, cwd), headers: headers,
                    name: name, label: name || "from #{sources.first.display}")
      end

      # Vagrant's features boxsig add does not have: refused by name, with what to do.
      def refuse_unsupported(opts)
        if truthy(opts[:location_trusted])
          raise Unsupported, "--location-trusted (config.vm.box_download_location_trusted) is not supported: " \
                             "boxsig never sends credentials to a host other than the one they are for"
        end
        unless Array(opts[:extra_download_options]).compact.empty?
          raise Unsupported, "config.vm.box_extra_download_options (extra curl options) are not supported: " \
                             "boxsig downloads the box itself, without curl"
        end
        if truthy(opts[:token_by_url])
          raise Unsupported, "VAGRANT_SERVER_ACCESS_TOKEN_BY_URL is not supported: boxsig sends the access " \
                             "token in an Authorization header, as Vagrant does by default; unset the variable"
        end
        providers(opts)
      end

      # The one provider to ask boxsig for, or nil for any.
      def providers(opts)
        list = Array(opts[:provider]).flatten.compact.map(&:to_s).reject(&:empty?).uniq
        if list.length > 1
          raise Unsupported, "Vagrant would accept any of the providers #{list.join(', ')} here, and boxsig adds " \
                             "a box for one provider: add the box first with `vagrant box add NAME --provider " \
                             "#{list.first}` (or another of them)"
        end
        list.first
      end

      # One entry of Vagrant's URL list, resolved as Vagrant's BoxAdd resolves it: a URL
      # stays a URL, an existing file (path or file:// URL, relative to the current
      # directory) becomes its absolute path, and a shorthand `org/name` becomes the
      # catalog URL on the box server.
      def resolve(url, cwd:, server_url:)
        u = url.gsub("\\", "/")
        if u =~ URL_RE && !u.start_with?("file://")
          scheme = u[/\A[a-z0-9]+/i].downcase
          unless %w[http https].include?(scheme)
            raise Unsupported, "boxsig downloads boxes over http, https or from files, not #{scheme}:// URLs"
          end

          return { url: u }
        end
        path = File.expand_path(URI::RFC2396_Parser.new.unescape(u.sub(%r{\Afile://}, "")), cwd)
        return { path: path } if File.file?(path)
        return { url: "#{server_url.to_s.chomp('/')}/#{u}", shorthand: u } if u =~ SHORTHAND_RE && server_url

        { path: path }
      end

      # Sources for boxsig, with credentials moved out of URLs into headers: user info of
      # a URL becomes a Basic Authorization header for its host (as Vagrant's downloader
      # hands it to curl); then Vagrant's own authentication hooks (the Vagrant Cloud
      # token) add their headers per host.
      def authenticate(resolved, vagrant, headers, server_url)
        urls = resolved.map { |r| r[:url] }.compact
        authed = urls.empty? ? [] : vagrant.authenticate_urls(urls.dup)
        if authed.length != urls.length
          raise Unsupported, "another plugin's box URL authentication returned #{authed.length} URLs for #{urls.length}"
        end

        by_url = urls.zip(authed).to_h
        sources = resolved.map do |r|
          next Source.new(location: r[:path], display: "file://#{r[:path]}") if r[:path]

          url = strip_user_info(by_url.fetch(r[:url]), headers)
          Source.new(location: url, display: url)
        end
        urls = sources.map(&:location).select { |u| u =~ %r{\Ahttps?://}i }
        # a catalog may name boxes on the box server, where Vagrant sends its token too
        urls << server_url if server_url && (urls.any? || sources.any? { |src| maybe_catalog?(src.location) })
        urls.each { |u| add_headers(headers, host_of(u), vagrant.headers_for(u)) }
        sources
      end

      # Vagrant reads a local file as a catalog when it parses as JSON, and never when it is
      # larger than 20 MiB (BoxAdd::METADATA_SIZE_LIMIT).
      def maybe_catalog?(location)
        File.file?(location) && File.size(location) <= 20 * 1024 * 1024
      end

      def strip_user_info(url, headers)
        uri = URI.parse(url)
        return url unless uri.user

        credentials = CGI.unescape(uri.user)
        credentials += ":#{CGI.unescape(uri.password)}" if uri.password
        add_headers(headers, uri.host, ["Authorization: Basic #{Base64.strict_encode64(credentials)}"])
        uri.user = nil
        uri.password = nil
        uri.to_s
      rescue URI::Error
        url
      end

      # Adds headers for a host, keeping the first header of each name.
      def add_headers(headers, host, list)
        return if host.to_s.empty?

        Array(list).map(&:to_s).each do |header|
          existing = (headers[host.downcase] ||= [])
          existing << header unless existing.any? { |e| header_name(e) == header_name(header) }
        end
      end

      def header_name(header)
        header.split(":", 2).first.to_s.strip.downcase
      end

      def host_of(url)
        URI.parse(url).host
      rescue URI::Error
        nil
      end

      # The boxsig add options after SOURCE.
      def options(opts, name, cwd)
        args = ["--vagrant-home", opts[:vagrant_home].to_s, "--json"]
        args += ["--name", name] if name
        version = opts[:version].to_s.strip
        args += ["--box-version", version] unless version.empty?
        provider = providers(opts)
        args += ["--provider", provider] if provider
        args += checksum_args(opts[:checksum], opts[:checksum_type])
        args << "--force" if truthy(opts[:force])
        args += tls_args(opts, cwd)
        args += ["--policy-json", opts[:policy_json]] if opts[:policy_json]
        architecture = opts[:architecture].to_s
        args += ["--architecture", architecture] unless architecture.empty? || architecture == "auto"
        args
      end

      # Vagrant checks a checksum only with its type; boxsig gets the type always, taken
      # from the length of the checksum when Vagrant was not told it.
      def checksum_args(checksum, type)
        sum = checksum.to_s.strip
        return [] if sum.empty?

        given = type.to_s.strip.downcase
        kind = given.empty? ? CHECKSUM_TYPE_BY_LENGTH.fetch(sum.length, "") : given
        return ["--checksum", sum, "--checksum-type", kind] if CHECKSUM_TYPES.include?(kind)

        raise Unsupported, "the checksum type #{given.inspect} is not one of #{CHECKSUM_TYPES.join(', ')}" unless given.empty?

        raise Unsupported, "the checksum has no type, and its length fits none of #{CHECKSUM_TYPES.join(', ')}"
      end

      def tls_args(opts, cwd)
        args = []
        args << "--insecure" if truthy(opts[:insecure])
        args += ["--cacert", File.expand_path(opts[:ca_cert].to_s, cwd)] if present(opts[:ca_cert])
        args += ["--capath", File.expand_path(opts[:ca_path].to_s, cwd)] if present(opts[:ca_path])
        args += ["--cert", File.expand_path(opts[:client_cert].to_s, cwd)] if present(opts[:client_cert])
        args
      end

      def truthy(value)
        !(value.nil? || value == false || value.to_s.empty?)
      end

      def present(value)
        !value.nil? && !value.to_s.empty?
      end
    end
  end
end
