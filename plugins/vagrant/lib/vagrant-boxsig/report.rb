# frozen_string_literal: true

require_relative "text"

module VagrantPlugins
  module Boxsig
    # What the plugin says about boxsig's result, as [level, line] pairs for Vagrant's UI
    # (level: :success, :warn, :detail). Every value taken from boxsig's JSON (which
    # carries names, versions, user IDs and messages from the box, its keys and the
    # catalog) goes through Text first. Pure: tested in spec/report_spec.rb.
    module Report
      module_function

      # name, version and provider of the added box, cleaned for the terminal.
      def identity(json)
        box = json.is_a?(Hash) && json["box"].is_a?(Hash) ? json["box"] : {}
        %w[name version provider].to_h { |k| [k.to_sym, Text.clean(box[k])] }
      end

      def accepted(json)
        id = identity(json)
        who = "#{id[:name]} #{id[:version]} (#{id[:provider]})"
        lines = [verdict(json, who)]
        lines += Array(json["recorded"]).map { |r| recorded(r, id[:name]) }
        lines += Array(json["warnings"]).map { |w| [:warn, "boxsig: warning: #{Text.clean(w)}"] }
        lines << [:detail, "boxsig: the box that was installed under #{who} was replaced (--force), after the new one verified."] if json["replaced"]
        lines
      end

      def verdict(json, who)
        if json["signed"] == false
          [:warn, "boxsig: #{who} is NOT signed; it was added because the policy makes signatures optional for it."]
        else
          trust = json["trust"].to_s.empty? ? "" : ": #{Text.clean(json['trust'])}"
          [:success, "boxsig: verified #{who}#{trust}"]
        end
      end

      def recorded(line, name)
        text = Text.clean(line)
        return [:detail, "boxsig: recorded #{text}"] unless text.start_with?("first-use")

        fprs = text.sub(/\Afirst-use:\s*/, "")
        first = fprs.split(/[\s,]+/).first.to_s
        [:warn, "boxsig: FIRST USE of #{name}: trusting #{fprs} for this box name from now on (trust on " \
                "first use). To pin it for everyone, put it in the Vagrantfile: config.boxsig.boxes = " \
                "{ #{name.inspect} => { \"pin\" => [#{first.inspect}] } }"]
      end

      # The error data for a failed `boxsig add` (see locales/en.yml): label names the box
      # (its name or where it comes from), name is its name when known.
      def failure(result, label:, name: nil)
        code = Text.clean(result.code)
        hint = Text.clean_block(result.json && result.json["hint"]).strip
        message = Text.clean_block(result.message)
        extra = hint.empty? || message.include?(hint) ? "" : "\nhint: #{hint}"
        { box: Text.clean(label), code: code, message: message, exit_code: result.exit_code,
          hint: "#{extra}#{advice(code, name)}" }
      end

      def advice(code, name)
        case code
        when "UNSIGNED"
          "\nIf this box is meant to be unsigned, allow it explicitly in the Vagrantfile:\n" \
            "  config.boxsig.boxes = { #{Text.clean(name || 'NAME').inspect} => { \"signatures\" => \"optional\" } }"
        when "UNTRUSTED_KEY", "THRESHOLD_NOT_MET"
          "\nCheck config.boxsig.boxes / config.boxsig.orgs in the Vagrantfile and boxsig.json " \
            "(`boxsig trust list` shows what is recorded)."
        when "CONFIG", "USAGE"
          "\nCheck the command line, and config.boxsig in the Vagrantfile (and boxsig.json, ~/.config/boxsig/)."
        else
          ""
        end
      end
    end
  end
end
