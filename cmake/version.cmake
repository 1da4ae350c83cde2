# Writes pan_offlineConfigVersion.cmake with CMake's own helper (0.x: the same minor version is
# compatible). Run by .ci/cinstall.sh, which checks the committed file is what this writes:
#   cmake -DVERSION=<Cargo.toml's version> -DOUT=<file> -P cmake/version.cmake
include(CMakePackageConfigHelpers)
write_basic_package_version_file("${OUT}" VERSION "${VERSION}" COMPATIBILITY SameMinorVersion)
