# frozen_string_literal: true

require_relative "lib/vagrant-boxsig/version"

Gem::Specification.new do |spec|
  spec.name          = "vagrant-boxsig"
  spec.version       = VagrantPlugins::Boxsig::VERSION
  spec.authors       = ["boxsig contributors"]
  spec.summary       = "Verify OpenPGP box signatures (boxsig) when Vagrant adds a box"
  spec.description   = <<~DESC
    Runs the boxsig command-line tool after every `vagrant box add`, `vagrant box update`
    and the automatic box add of `vagrant up`, and removes the box and fails the command
    when the box is tampered with, unsigned where signatures are required, or signed by a
    key the trust policy does not accept. Trust policy can be pinned in the Vagrantfile
    with config.boxsig.
  DESC
  spec.license       = "MIT"
  spec.required_ruby_version = ">= 2.6"

  # Listed from the directory, not from git, so that `gem build` works in any checkout
  # (and in a copy of this directory).
  spec.files = Dir.chdir(__dir__) do
    Dir["lib/**/*.rb", "locales/*.yml", "README.md", "vagrant-boxsig.gemspec"]
  end
  spec.require_paths = ["lib"]
  # Vagrant itself provides everything else; no runtime gem dependencies, so the plugin
  # installs offline with `vagrant plugin install --plugin-clean-sources ./vagrant-boxsig-X.gem`.
end
