# boxsig example (HCL2): build a small Vagrant box and sign it with boxsig.
#
# No hypervisor is needed: the `null` builder does nothing, `artifice` hands
# two small files (files/box.ovf, files/box-disk1.vmdk) to the `vagrant`
# post-processor as if a VirtualBox build had exported them, and a
# `shell-local` post-processor signs the resulting box with boxsig-packer-sign.
# In a real template, replace the source and the artifice step with your
# builder; keep the vagrant + shell-local part of the chain.
#
#   export BOXSIG_KEY_FILE=/path/to/build.secret.asc   # or BOXSIG_KEY="$(cat …)"
#   packer build -var box_version=1.2.3 plugins/packer/examples/boxsig-example.pkr.hcl
#
# See ../README.md for every variable and what happens when signing fails.

variable "box_output" {
  type        = string
  default     = "output/boxsig-example.box"
  description = "Where the vagrant post-processor writes the box; the same path is signed."
}

variable "box_name" {
  type    = string
  default = "example/boxsig-demo"
}

variable "box_version" {
  type    = string
  default = "0.1.0"
}

variable "key_file" {
  type        = string
  default     = env("BOXSIG_KEY_FILE")
  description = "Secret key file. Empty: the armored key in the BOXSIG_KEY environment variable is used."
}

variable "passphrase_file" {
  type        = string
  default     = env("BOXSIG_PASSPHRASE_FILE")
  description = "Passphrase of a protected key (BOXSIG_PASSPHRASE in the environment works too)."
}

variable "expires" {
  type        = string
  default     = ""
  description = "Optional expiry of the signed manifest, e.g. 180d."
}

variable "quarantine_dir" {
  type        = string
  default     = ""
  description = "Where an unsigned box goes if signing fails. Empty: renamed to <box_output>.unsigned."
}

variable "boxsig_packer_sign" {
  type        = string
  default     = ""
  description = "Path of boxsig-packer-sign. Empty: the copy next to this examples/ directory."
}

# Signed claims. Claims whose value is empty are left out.
variable "builder" {
  type    = string
  default = "local"
}

variable "git_commit" {
  type    = string
  default = env("GIT_COMMIT")
}

variable "ci_job" {
  type    = string
  default = env("CI_JOB_ID")
}

variable "extra_claims" {
  type    = map(string)
  default = {}
}

locals {
  boxsig_packer_sign = var.boxsig_packer_sign != "" ? var.boxsig_packer_sign : "${path.root}/../boxsig-packer-sign"
  claims = merge({
    builder    = var.builder
    git_commit = var.git_commit
    ci_job     = var.ci_job
  }, var.extra_claims)
  # One environment variable per claim (BOXSIG_CLAIM_1=builder=…): a value is
  # never joined with others, so a newline in it cannot add a claim (boxsig
  # refuses such a value and the build fails).
  claim_vars = [for i, k in sort(keys(local.claims)) : "BOXSIG_CLAIM_${i + 1}=${k}=${local.claims[k]}"]
}

source "null" "example" {
  communicator = "none"
}

build {
  sources = ["source.null.example"]

  # One chain: each post-processor gets the previous one's artifact, in order.
  post-processors {
    post-processor "artifice" {
      files = [
        "${path.root}/files/box.ovf",
        "${path.root}/files/box-disk1.vmdk",
      ]
    }

    post-processor "vagrant" {
      provider_override = "virtualbox"
      # Keep the artifice files (otherwise Packer deletes them after this step).
      keep_input_artifact = true
      output              = var.box_output
    }

    # shell-local is not told where the box is: give it the same variable.
    post-processor "shell-local" {
      environment_vars = concat([
        "BOXSIG_BOX=${var.box_output}",
        "BOXSIG_NAME=${var.box_name}",
        "BOXSIG_VERSION=${var.box_version}",
        "BOXSIG_KEY_FILE=${var.key_file}",
        "BOXSIG_PASSPHRASE_FILE=${var.passphrase_file}",
        "BOXSIG_EXPIRES=${var.expires}",
        "BOXSIG_QUARANTINE_DIR=${var.quarantine_dir}",
        "BOXSIG_PACKER_SIGN=${local.boxsig_packer_sign}",
      ], local.claim_vars)
      inline = ["\"$BOXSIG_PACKER_SIGN\" \"$BOXSIG_BOX\""]
    }
  }
}
