# frozen_string_literal: true

begin
  require "vagrant"
rescue LoadError
  raise "The vagrant-boxsig plugin must be run within Vagrant."
end

require "vagrant-boxsig/version"
require "vagrant-boxsig/plugin"
