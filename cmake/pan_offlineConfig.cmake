# CMake package configuration for pan_offline, installed by `cargo cinstall` as
# <prefix>/lib/cmake/pan_offline/pan_offlineConfig.cmake:
#
#   find_package(pan_offline 0.1 CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE pan_offline::pan_offline)         # libpan_offline.so
#   target_link_libraries(app PRIVATE pan_offline::pan_offline_static)  # libpan_offline.a
#
# Both targets carry the include directory (pan_offline.h, pan_offline.hpp); the static one also
# carries the system libraries the Rust standard library needs (the Libs.private of
# pan_offline.pc). Everything is found relative to this file, so an installed prefix can move.

get_filename_component(_pan_offline_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
# cargo-c's libdir is lib/<multiarch> on Debian and lib elsewhere; --libdir can say lib64.
set(_pan_offline_libdirs lib lib64)
if(CMAKE_LIBRARY_ARCHITECTURE)
  list(PREPEND _pan_offline_libdirs "lib/${CMAKE_LIBRARY_ARCHITECTURE}")
endif()

# Plain variables, not find_library's cache entries: a cached path would outlive a moved or
# switched prefix and point at the old one.
set(pan_offline_INCLUDE_DIR "${_pan_offline_prefix}/include")
if(NOT EXISTS "${pan_offline_INCLUDE_DIR}/pan_offline.h")
  set(pan_offline_INCLUDE_DIR "")
endif()
set(pan_offline_LIBRARY "")
set(pan_offline_STATIC_LIBRARY "")
foreach(_pan_offline_dir IN LISTS _pan_offline_libdirs)
  set(_pan_offline_dir "${_pan_offline_prefix}/${_pan_offline_dir}")
  if(NOT pan_offline_LIBRARY AND EXISTS "${_pan_offline_dir}/libpan_offline.so")
    set(pan_offline_LIBRARY "${_pan_offline_dir}/libpan_offline.so")
  endif()
  if(NOT pan_offline_STATIC_LIBRARY AND EXISTS "${_pan_offline_dir}/libpan_offline.a")
    set(pan_offline_STATIC_LIBRARY "${_pan_offline_dir}/libpan_offline.a")
  endif()
endforeach()

foreach(_pan_offline_var pan_offline_INCLUDE_DIR pan_offline_LIBRARY pan_offline_STATIC_LIBRARY)
  if(NOT ${_pan_offline_var})
    set(pan_offline_FOUND FALSE)
    set(pan_offline_NOT_FOUND_MESSAGE
      "${_pan_offline_var} not found under ${_pan_offline_prefix}: is the installation complete?")
    return()
  endif()
endforeach()

include(CMakeFindDependencyMacro)
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_dependency(Threads)

if(NOT TARGET pan_offline::pan_offline)
  add_library(pan_offline::pan_offline SHARED IMPORTED)
  set_target_properties(pan_offline::pan_offline PROPERTIES
    IMPORTED_LOCATION "${pan_offline_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${pan_offline_INCLUDE_DIR}")
endif()

if(NOT TARGET pan_offline::pan_offline_static)
  add_library(pan_offline::pan_offline_static STATIC IMPORTED)
  # The same system libraries as `pkg-config --static --libs pan_offline` (from rustc's
  # --print native-static-libs); .ci/cinstall.sh checks that the two lists agree.
  set(pan_offline_STATIC_SYSTEM_LIBRARIES gcc_s util rt pthread m dl c)
  set_target_properties(pan_offline::pan_offline_static PROPERTIES
    IMPORTED_LOCATION "${pan_offline_STATIC_LIBRARY}"
    IMPORTED_LINK_INTERFACE_LANGUAGES C
    INTERFACE_INCLUDE_DIRECTORIES "${pan_offline_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${pan_offline_STATIC_SYSTEM_LIBRARIES}")
endif()

set(pan_offline_LIBRARIES pan_offline::pan_offline)
set(pan_offline_INCLUDE_DIRS "${pan_offline_INCLUDE_DIR}")
unset(_pan_offline_prefix)
unset(_pan_offline_libdirs)
unset(_pan_offline_dir)
