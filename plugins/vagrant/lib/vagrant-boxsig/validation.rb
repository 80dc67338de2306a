# frozen_string_literal: true

module VagrantPlugins
  module Boxsig
    # The one place where the plugin checks config.boxsig (for `vagrant validate`, for
    # every add and for the `vagrant boxsig` commands). It checks shapes and fingerprints,
    # so that a typo is reported before anything is downloaded; boxsig checks the content
    # (globs, thresholds, claims ...) again when it reads the same layer.
    module Validation
      FINGERPRINT = /\A[0-9A-F]{40}\z/.freeze

      module_function

      # A fingerprint as boxsig normalises it ("0x" prefix, spaces and colons dropped,
      # upper case), or nil when it is not a full 40-hex-digit v4 fingerprint.
      def fingerprint(value)
        return nil unless value.is_a?(String)

        f = value.sub(/\A0x/i, "").gsub(/[\s:]/, "").upcase
        FINGERPRINT.match?(f) ? f : nil
      end

      # Problems (a list of messages) of the values of config.boxsig.
      def problems(boxes:, orgs:, enabled:, binary:)
        box_problems(boxes) + org_problems(orgs) + enabled_problems(enabled) + binary_problems(binary)
      end

      def box_problems(boxes)
        unless boxes.is_a?(Hash)
          return ["config.boxsig.boxes must be a Hash of box-name globs to policies, " \
                  "e.g. { \"acme/*\" => { \"pin\" => [\"<FPR>\"] } }"]
        end

        boxes.flat_map { |glob, policy| [glob_problem("config.boxsig.boxes", glob), *policy_problems(glob, policy)].compact }
      end

      def policy_problems(glob, policy)
        where = "config.boxsig.boxes[#{glob.to_s.inspect}]"
        return ["#{where} must be a Hash (e.g. { \"pin\" => [\"<FPR>\"] })"] unless policy.is_a?(Hash)

        pin = policy.key?("pin") ? policy["pin"] : policy[:pin]
        pin.nil? ? [] : fingerprint_list_problems("#{where}[\"pin\"]", pin)
      end

      def org_problems(orgs)
        unless orgs.is_a?(Hash)
          return ["config.boxsig.orgs must be a Hash of box-name globs to lists of org key " \
                  "fingerprints, e.g. { \"acme/*\" => [\"<FPR>\"] }"]
        end

        orgs.flat_map do |glob, fprs|
          [glob_problem("config.boxsig.orgs", glob)].compact +
            fingerprint_list_problems("config.boxsig.orgs[#{glob.to_s.inspect}]", fprs)
        end
      end

      def glob_problem(where, glob)
        return nil if (glob.is_a?(String) || glob.is_a?(Symbol)) && !glob.to_s.empty?

        "#{where}: the key #{glob.inspect} must be a non-empty String (a box-name glob)"
      end

      def fingerprint_list_problems(where, list)
        return ["#{where} must be an Array of 40-hex-digit key fingerprints"] unless list.is_a?(Array)

        list.each_with_index.filter_map do |fpr, i|
          next if fingerprint(fpr)

          "#{where}[#{i}]: #{fpr.inspect} is not a full 40-hex-digit OpenPGP fingerprint"
        end
      end

      def enabled_problems(enabled)
        [true, false].include?(enabled) ? [] : ["config.boxsig.enabled must be true or false"]
      end

      def binary_problems(binary)
        ok = binary.nil? || binary.is_a?(String) ||
             (binary.is_a?(Array) && !binary.empty? && binary.all? { |a| a.is_a?(String) })
        ok ? [] : ["config.boxsig.binary must be a path (String) or a command (Array of Strings)"]
      end
    end
  end
end
