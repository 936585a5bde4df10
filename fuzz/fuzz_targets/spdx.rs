#![no_main]
depfw_fuzz::lockfile_target!(Spdx);
