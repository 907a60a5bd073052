# install.cmake - `cmake --install build --prefix P` puts into P:
#   lib/libgcmalloc.so{,.0,.0.1.0}, lib/libgcmalloc.a     the libraries
#   include/gcmalloc.h                                     the API
#   lib/pkgconfig/gcmalloc.pc                              pkg-config --cflags --libs gcmalloc
#   lib/cmake/gcmalloc/gcmalloc{Config,ConfigVersion,Targets}.cmake
#                                                          find_package(gcmalloc): gcmalloc::gcmalloc
#                                                          (shared), gcmalloc::gcmalloc_static
#   bin/gcmalloc                                           the run command (scripts/gcmalloc.in)
# Everything is relocatable: the .pc file and the CMake package find the
# prefix from their own location, so --prefix at install time is honoured.
include(CMakePackageConfigHelpers)

set(GCM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/gcmalloc)
set(GCM_LIB_NAME libgcmalloc.so.${PROJECT_VERSION_MAJOR})

# The run command: one copy for the build tree (library next to it), one for
# the install tree (library in ../lib).
set(GCM_LIB_REL .)
configure_file(${CMAKE_SOURCE_DIR}/scripts/gcmalloc.in ${CMAKE_BINARY_DIR}/gcmalloc @ONLY)
file(RELATIVE_PATH GCM_LIB_REL /P/${CMAKE_INSTALL_BINDIR} /P/${CMAKE_INSTALL_LIBDIR})
configure_file(${CMAKE_SOURCE_DIR}/scripts/gcmalloc.in ${CMAKE_BINARY_DIR}/install/gcmalloc @ONLY)

# pkg-config: prefix relative to the .pc file's own directory.
file(RELATIVE_PATH GCM_PC_PREFIX_REL /P/${CMAKE_INSTALL_LIBDIR}/pkgconfig /P)
string(REGEX REPLACE "/$" "" GCM_PC_PREFIX_REL "${GCM_PC_PREFIX_REL}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/gcmalloc.pc.in ${CMAKE_BINARY_DIR}/install/gcmalloc.pc @ONLY)

configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/gcmallocConfig.cmake.in
  ${CMAKE_BINARY_DIR}/install/gcmallocConfig.cmake INSTALL_DESTINATION ${GCM_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/install/gcmallocConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)

install(TARGETS gcmalloc gcmalloc_static EXPORT gcmallocTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/gcmalloc.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(PROGRAMS ${CMAKE_BINARY_DIR}/install/gcmalloc DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_BINARY_DIR}/install/gcmalloc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(EXPORT gcmallocTargets NAMESPACE gcmalloc:: DESTINATION ${GCM_CMAKE_DIR})
install(FILES ${CMAKE_BINARY_DIR}/install/gcmallocConfig.cmake
              ${CMAKE_BINARY_DIR}/install/gcmallocConfigVersion.cmake
        DESTINATION ${GCM_CMAKE_DIR})
