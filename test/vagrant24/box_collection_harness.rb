# frozen_string_literal: true

# Loads Vagrant 2.4's own lib/vagrant/box_collection.rb (the path is the first
# argument: a file of a Vagrant 2.4 checkout, never part of this repository)
# with stubs for the rest of Vagrant, and prints as JSON what it reads in a
# boxes directory: BoxCollection#all, and BoxCollection#find for each query
# read from standard input ([{name, providers, version, architecture}],
# architecture "auto" for Vagrant's :auto, null for nil).
#
#   ruby box_collection_harness.rb BOX_COLLECTION_RB BOXES_DIR HOST_ARCH < queries.json

require "json"
require "pathname"
require "monitor"

source, boxes, host = ARGV
STUBBED = %w[log4r vagrant/util/platform vagrant/util/subprocess].freeze

module Kernel
  alias_method :harness_original_require, :require
  def require(name)
    return true if STUBBED.include?(name)

    harness_original_require(name)
  end
end

module Log4r
  class Logger
    def initialize(*); end

    def method_missing(*); end

    def respond_to_missing?(*)
      true
    end
  end
end

module I18n
  def self.t(*args)
    args.inspect
  end
end

module Vagrant
  module Util
    module Platform
      def self.architecture
        ENV.fetch("HARNESS_HOST_ARCHITECTURE")
      end

      def self.windows?
        false
      end
    end
  end

  module UI
    class Colored; end

    class Prefixed
      def initialize(*); end

      def warn(*); end
    end
  end

  module Errors
    class BoxVersionInvalid < StandardError; end
  end

  class Box
    attr_reader :name, :provider, :version, :directory

    def initialize(name, provider, version, directory, **_)
      @name = name
      @provider = provider
      @version = version
      @directory = directory
    end
  end
end

ENV["HARNESS_HOST_ARCHITECTURE"] = host
load source

collection = Vagrant::BoxCollection.new(Pathname.new(boxes))
queries = JSON.parse($stdin.read)
found = queries.map do |q|
  arch = q["architecture"] == "auto" ? :auto : q["architecture"]
  box = collection.find(q["name"], q["providers"].map(&:to_sym), q["version"], arch)
  box && { name: box.name, provider: box.provider.to_s, version: box.version, directory: box.directory.to_s }
end
all = collection.all.map { |n, v, p, a| [n, v, p.to_s, a&.to_s] }
puts JSON.generate({ all: all, find: found })
