variable "region" {
  description = "AWS region of every resource."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "name" {
  description = "Name prefix of every resource and of the SSM parameter path (/<name>/...)."
  type        = string
  default     = "rtep"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lower-case letters, digits or dashes, starting with a letter."
  }
}

variable "instance_type" {
  description = "EC2 instance type. The whole stack (Kafka, PostgreSQL, Redis, Grafana, Prometheus, dataflow) needs >= 8 GiB RAM."
  type        = string
  default     = "t3.large"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must look like an EC2 instance type, e.g. t3.large."
  }
}

variable "architecture" {
  description = "CPU architecture of the AMI; must match instance_type (x86_64 for t3, arm64 for t4g)."
  type        = string
  default     = "amd64"

  validation {
    condition     = contains(["amd64", "arm64"], var.architecture)
    error_message = "architecture must be amd64 or arm64."
  }
}

variable "root_volume_size_gb" {
  description = "Size of the encrypted gp3 root volume: Docker images, Kafka, Redis, the recovery store, Prometheus and Grafana (PostgreSQL has its own volume)."
  type        = number
  default     = 40

  validation {
    condition     = var.root_volume_size_gb >= 20 && var.root_volume_size_gb <= 1024
    error_message = "root_volume_size_gb must be between 20 and 1024."
  }
}

variable "vpc_id" {
  description = "Existing VPC id; null creates a VPC. Set together with subnet_id."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must be null or a VPC id (vpc-...)."
  }
}

variable "subnet_id" {
  description = "Existing subnet id (in vpc_id) for the instance; null creates a public subnet."
  type        = string
  default     = null

  validation {
    condition     = var.subnet_id == null || can(regex("^subnet-[0-9a-f]{8,17}$", var.subnet_id))
    error_message = "subnet_id must be null or a subnet id (subnet-...)."
  }
}

variable "availability_zone" {
  description = "Availability zone of the created subnet; null means the region's \"a\" zone."
  type        = string
  default     = null

  validation {
    condition     = var.availability_zone == null || can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$", var.availability_zone))
    error_message = "availability_zone must be null or a zone name such as eu-west-1a."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the VPC created when vpc_id is null."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a CIDR block."
  }
}

variable "associate_public_ip" {
  description = "Give the instance a public IPv4 address (egress without a NAT gateway; nothing is reachable inbound)."
  type        = bool
  default     = true
}

variable "image" {
  description = "Initial rtep image (registry/name:tag). The deploy workflow overwrites the SSM parameter afterwards."
  type        = string
  default     = "ghcr.io/OWNER/rtep:0.1.0"

  validation {
    condition     = can(regex("^[a-z0-9./_-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$", var.image)) && !endswith(var.image, ":latest")
    error_message = "image must carry an explicit tag or digest, and not :latest."
  }
}

variable "registry_token_parameter" {
  description = "Name of an existing SecureString SSM parameter holding a GHCR token (read:packages) for private images; null for public images."
  type        = string
  default     = null

  validation {
    condition     = var.registry_token_parameter == null || can(regex("^/?[A-Za-z0-9_.\\-/]+$", var.registry_token_parameter))
    error_message = "registry_token_parameter must be null or an SSM parameter name."
  }
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log group receiving every container's logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ... 3653)."
  }
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose production environment may deploy through OIDC; empty string creates no deploy role."
  type        = string
  default     = ""

  validation {
    condition     = var.github_repository == "" || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be empty or owner/name."
  }
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (false when it already exists)."
  type        = bool
  default     = true
}

variable "postgres_volume_size_gb" {
  description = "Size of the encrypted gp3 volume holding PostgreSQL's data (kept when the instance goes, snapshotted daily)."
  type        = number
  default     = 50

  validation {
    condition     = var.postgres_volume_size_gb >= 10 && var.postgres_volume_size_gb <= 16384
    error_message = "postgres_volume_size_gb must be between 10 and 16384."
  }
}

variable "snapshot_time_utc" {
  description = "Time of day (UTC, HH:MM) at which Data Lifecycle Manager snapshots the PostgreSQL volume."
  type        = string
  default     = "03:00"

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.snapshot_time_utc))
    error_message = "snapshot_time_utc must be HH:MM in 24-hour UTC, e.g. 03:00."
  }
}

variable "snapshot_retention_count" {
  description = "How many daily snapshots of the PostgreSQL volume to keep (the oldest is deleted beyond it)."
  type        = number
  default     = 14

  validation {
    condition     = var.snapshot_retention_count >= 1 && var.snapshot_retention_count <= 1000
    error_message = "snapshot_retention_count must be between 1 and 1000 (a DLM limit)."
  }
}

variable "terraform_state_bucket" {
  description = "S3 bucket of the remote state (backend.tf); with github_repository, creates the read-only role the pull-request plan uses. Empty: no plan role."
  type        = string
  default     = ""

  validation {
    condition     = var.terraform_state_bucket == "" || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.terraform_state_bucket))
    error_message = "terraform_state_bucket must be empty or an S3 bucket name."
  }
}

variable "terraform_state_key" {
  description = "Key of the state object in terraform_state_bucket (the plan role may read only this object)."
  type        = string
  default     = "rtep/production.tfstate"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()/-]+$", var.terraform_state_key))
    error_message = "terraform_state_key must be an S3 object key."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
