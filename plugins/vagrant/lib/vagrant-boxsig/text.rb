# frozen_string_literal: true

module VagrantPlugins
  module Boxsig
    # Text that reaches the terminal from a box, a key, a catalog or a server (names,
    # versions, user IDs, boxsig's messages) goes through here first. Control characters
    # (C0, DEL, C1), and the Unicode characters that reorder or split lines (bidi
    # overrides and isolates, line and paragraph separators) are printed as visible escapes,
    # so such text can neither move the cursor, erase a line nor fake a line of its own.
    # boxsig escapes its own output too; the plugin does not rely on it.
    module Text
      UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.freeze
      NAMED = { "\n" => "\\n", "\r" => "\\r", "\t" => "\\t", "\e" => "\\e" }.freeze

      module_function

      # One line: every unsafe character escaped, newlines included.
      def clean(value)
        utf8(value).gsub(UNSAFE) { |c| escape(c) }
      end

      # A message of several lines (boxsig's refusals are): each line cleaned, and every
      # line after the first indented, so no line of it can pass for one of Vagrant's own
      # (`==> box: ...`).
      def clean_block(value, indent: "  ")
        lines = utf8(value).split(/\r?\n/)
        lines = [""] if lines.empty?
        first, *rest = lines.map { |l| clean(l) }
        ([first] + rest.map { |l| "#{indent}#{l}" }).join("\n")
      end

      def escape(char)
        NAMED.fetch(char) do
          code = char.ord
          code < 0x100 ? format("\\x%02x", code) : format("\\u%04x", code)
        end
      end

      # Any object as a valid UTF-8 String (invalid bytes become U+FFFD).
      def utf8(value)
        s = value.to_s.dup
        s.force_encoding(Encoding::UTF_8)
        s.valid_encoding? ? s : s.scrub("\uFFFD")
      end
    end
  end
end
