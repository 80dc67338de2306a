# frozen_string_literal: true

require_relative "lib/vagrant-boxsig/version"

Gem::Specification.new do |spec|
  spec.name          = "vagrant-boxsig"
  spec.version       = VagrantPlugins::Boxsig::VERSION
  spec.authors       = ["boxsig contributors"]
  spec.summary       = "Verified box adds for Vagrant: every add is done by boxsig (OpenPGP box signatures)"
  spec.description   = <<~DESC
    Hands every box add of Vagrant (`vagrant box add`, `vagrant box update` and the
    automatic add of `vagrant up`) to `boxsig add`, which downloads, checks, verifies
    the OpenPGP signatures of and extracts the box in one pass, and moves it into
    Vagrant's boxes directory only once every check passed: Vagrant never extracts or
    shows a box that is tampered with, unsigned where signatures are required, or
    signed by a key the trust policy does not accept. Trust policy can be pinned in
    the Vagrantfile with config.boxsig.
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
