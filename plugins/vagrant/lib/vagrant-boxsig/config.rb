# frozen_string_literal: true

require "json"
require_relative "validation"

module VagrantPlugins
  module Boxsig
    # config.boxsig in a Vagrantfile:
    #
    #   config.boxsig.boxes = { "acme/*" => { "pin" => ["<FPR>"], "threshold" => 2,
    #                                         "signatures" => "optional", "claims" => {...} } }
    #   config.boxsig.orgs  = { "acme/*" => ["<org key FPR>"] }
    #   config.boxsig.enabled = false          # add boxes without verification (explicit opt-out)
    #   config.boxsig.binary  = "/opt/boxsig/bin/boxsig"   # default: `boxsig` on the PATH
    #
    # `boxes` and `orgs` have exactly the meaning of the same keys in boxsig's project file
    # boxsig.json; they are handed to boxsig as one more policy layer (--policy-json), over
    # the user config and boxsig.json. Validation checks their shape and fingerprints;
    # boxsig itself validates the rest of their content.
    class Config < Vagrant.plugin("2", :config)
      attr_accessor :boxes, :orgs, :enabled, :binary

      def initialize
        super
        @boxes = UNSET_VALUE
        @orgs = UNSET_VALUE
        @enabled = UNSET_VALUE
        @binary = UNSET_VALUE
      end

      # Vagrantfiles are merged (box, home, project, machine): per glob, the later one wins,
      # so a project can add a glob to the ones of the home Vagrantfile.
      def merge(other)
        result = super
        %i[boxes orgs].each do |key|
          mine = instance_variable_get(:"@#{key}")
          theirs = other.instance_variable_get(:"@#{key}")
          if mine.is_a?(Hash) && theirs.is_a?(Hash)
            result.instance_variable_set(:"@#{key}", mine.merge(theirs))
          end
        end
        result
      end

      def finalize!
        @boxes = {} if @boxes == UNSET_VALUE || @boxes.nil?
        @orgs = {} if @orgs == UNSET_VALUE || @orgs.nil?
        @enabled = true if @enabled == UNSET_VALUE || @enabled.nil?
        @binary = nil if @binary == UNSET_VALUE
      end

      # A list of messages (see Validation); empty when config.boxsig is usable.
      def problems
        Validation.problems(boxes: @boxes, orgs: @orgs, enabled: @enabled, binary: @binary)
      end

      def validate(_machine)
        { "boxsig" => problems }
      end

      # The extra policy layer for `boxsig add|verify --policy-json`, or nil when the Vagrantfile
      # sets none. Same shape as boxsig.json: {"boxes": {...}, "orgs": {...}}.
      def policy_json
        layer = {}
        layer["boxes"] = @boxes unless @boxes.empty?
        layer["orgs"] = @orgs unless @orgs.empty?
        return nil if layer.empty?

        JSON.generate(stringify(layer))
      end

      private

      # Symbols (keys or values such as :optional) become strings.
      def stringify(value)
        case value
        when Hash then value.each_with_object({}) { |(k, v), h| h[k.to_s] = stringify(v) }
        when Array then value.map { |v| stringify(v) }
        when Symbol then value.to_s
        else value
        end
      end
    end
  end
end
