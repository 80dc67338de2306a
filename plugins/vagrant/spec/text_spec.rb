# frozen_string_literal: true

require "vagrant-boxsig/text"

RSpec.describe VagrantPlugins::Boxsig::Text do
  describe ".clean" do
    {
      "plain text" => ["acme/ubuntu 1.2.0", "acme/ubuntu 1.2.0"],
      "escape sequence erasing a line" => ["\e[2K\e[1Averified", "\\e[2K\\e[1Averified"],
      "carriage return" => ["refused\rverified", "refused\\rverified"],
      "newline" => ["a\n==> box: verified", "a\\n==> box: verified"],
      "tab" => ["a\tb", "a\\tb"],
      "backspace and bell" => ["a\b\a", "a\\x08\\x07"],
      "DEL" => ["a\u007fb", "a\\x7fb"],
      "C1 control (CSI)" => ["a\u009b2Kb", "a\\x9b2Kb"],
      "right-to-left override" => ["abc\u202edef", "abc\\u202edef"],
      "isolates" => ["\u2066x\u2069", "\\u2066x\\u2069"],
      "line separator" => ["a\u2028b", "a\\u2028b"],
      "non-ASCII letters stay" => ["Jürgen Ωmega 箱", "Jürgen Ωmega 箱"],
      "nil" => [nil, ""],
      "a symbol" => [:virtualbox, "virtualbox"],
    }.each do |what, (input, output)|
      it "escapes #{what}" do
        expect(described_class.clean(input)).to eq(output)
      end
    end

    it "replaces invalid UTF-8 instead of failing" do
      expect(described_class.clean("a\xffb".b)).to eq("a\uFFFDb")
    end

    it "leaves no control character in any string of bytes" do
      bytes = (0..255).map(&:chr).join.b
      expect(described_class.clean(bytes)).not_to match(/[\u0000-\u001f\u007f-\u009f]/)
    end
  end

  describe ".clean_block" do
    it "keeps the lines of a message, each cleaned, indenting every line after the first" do
      text = "the signing key of acme/web changed.\n  recorded: AAAA\nThe new key is not trusted"
      expect(described_class.clean_block(text)).to eq(
        "the signing key of acme/web changed.\n    recorded: AAAA\n  The new key is not trusted"
      )
    end

    it "lets no line of the message start like a line of Vagrant's" do
      evil = "signed by X (Evil\r\e[1A\n==> box: Successfully added box 'acme/web'!)"
      lines = described_class.clean_block(evil).lines
      expect(lines.drop(1)).to all(start_with("  "))
      expect(lines.join).not_to match(/[\r\e]/)
    end

    it "turns CRLF into one line break" do
      expect(described_class.clean_block("a\r\nb")).to eq("a\n  b")
    end
  end
end
