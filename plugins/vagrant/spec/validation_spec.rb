# frozen_string_literal: true

require "vagrant-boxsig/validation"

RSpec.describe VagrantPlugins::Boxsig::Validation do
  fpr = "0123456789ABCDEF0123456789ABCDEF01234567"
  valid = { boxes: {}, orgs: {}, enabled: true, binary: nil }

  describe ".fingerprint" do
    {
      fpr => fpr,
      fpr.downcase => fpr,
      "0x#{fpr}" => fpr,
      fpr.scan(/..../).join(" ") => fpr,
      fpr.scan(/../).join(":") => fpr,
      fpr[0, 16] => nil,
      "#{fpr}00" => nil,
      "Z" * 40 => nil,
      "" => nil,
      nil => nil,
      42 => nil,
    }.each do |input, output|
      it "#{input.inspect} -> #{output.inspect}" do
        expect(described_class.fingerprint(input)).to eq(output)
      end
    end
  end

  describe ".problems" do
    {
      "the defaults" => [{}, []],
      "a pin and an org" => [{ boxes: { "acme/*" => { "pin" => [fpr], "threshold" => 2 } }, orgs: { "corp/*" => [fpr] } }, []],
      "symbols as keys" => [{ boxes: { "acme/*": { pin: [fpr] } } }, []],
      "boxes not a Hash" => [{ boxes: "acme" }, [/config\.boxsig\.boxes must be a Hash/]],
      "a policy not a Hash" => [{ boxes: { "acme/*" => [fpr] } }, [/config\.boxsig\.boxes\["acme\/\*"\] must be a Hash/]],
      "an empty glob" => [{ boxes: { "" => {} } }, [/the key "" must be a non-empty String/]],
      "a glob not a String" => [{ orgs: { 1 => [fpr] } }, [/config\.boxsig\.orgs: the key 1 must be/]],
      "pin not a list" => [{ boxes: { "a/*" => { "pin" => fpr } } }, [/\["pin"\] must be an Array/]],
      "a short fingerprint in a pin" => [{ boxes: { "a/*" => { "pin" => [fpr, "ABCD"] } } }, [/\["pin"\]\[1\]: "ABCD" is not a full 40-hex-digit/]],
      "orgs not a Hash" => [{ orgs: "acme" }, [/config\.boxsig\.orgs must be a Hash/]],
      "org keys not a list" => [{ orgs: { "a/*" => fpr } }, [/config\.boxsig\.orgs\["a\/\*"\] must be an Array/]],
      "a bad org fingerprint" => [{ orgs: { "a/*" => ["nope"] } }, [/config\.boxsig\.orgs\["a\/\*"\]\[0\]: "nope" is not/]],
      "enabled not a boolean" => [{ enabled: "yes" }, [/enabled must be true or false/]],
      "binary a path" => [{ binary: "/opt/boxsig" }, []],
      "binary a command" => [{ binary: ["node", "main.js"] }, []],
      "binary an empty command" => [{ binary: [] }, [/binary must be a path/]],
      "binary a number" => [{ binary: 1 }, [/binary must be a path/]],
    }.each do |what, (values, expected)|
      it "reports #{expected.empty? ? 'nothing' : expected.length} problem(s) for #{what}" do
        problems = described_class.problems(**valid.merge(values))
        expect(problems.length).to eq(expected.length), problems.inspect
        expected.zip(problems).each { |pattern, problem| expect(problem).to match(pattern) }
      end
    end
  end
end
