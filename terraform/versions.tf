terraform {
  # 1.11+: write-only arguments (parameters.tf keeps passwords out of state); 1.10+: ephemeral
  # resources and S3 native state locking (use_lockfile) in backend.tf.example.
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    # 3.7+: ephemeral random_password.
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { Project = var.name })
  }
}
