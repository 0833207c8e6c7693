# Generates the C++ bindings of joins/hbase.thrift (HBase Thrift2,
# THBaseService) at build time and builds them into the static library
# ctrjoin_hbase_gen. Included by the root CMakeLists.txt after its
# find_package calls. Nothing generated is committed.
#
# Generated files land in <build>/gen/hbase/; the library exports <build>/gen,
# so code includes them as "hbase/THBaseService.h" and "hbase/hbase_types.h"
# (namespace ctrjoin::hbase).
#
# Thrift's headers include Boost headers (e.g. boost/numeric/conversion/cast.hpp)
# although Debian's libthrift-dev does not depend on libboost-dev: hence the
# find_package(Boost), which says so at configure time instead of mid-build.

pkg_check_modules(THRIFT REQUIRED IMPORTED_TARGET thrift)
find_package(Boost CONFIG REQUIRED)
find_program(THRIFT_COMPILER thrift REQUIRED)

# Generated code only works with the runtime library of the same version.
execute_process(COMMAND ${THRIFT_COMPILER} --version
                OUTPUT_VARIABLE _ctrjoin_thrift_compiler_version
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _ctrjoin_thrift_compiler_version STREQUAL "Thrift version ${THRIFT_VERSION}")
  message(FATAL_ERROR "thrift compiler (${_ctrjoin_thrift_compiler_version}) does not match "
                      "libthrift ${THRIFT_VERSION}")
endif()

set(CTRJOIN_HBASE_IDL ${CMAKE_CURRENT_LIST_DIR}/hbase.thrift)
set(CTRJOIN_GEN_DIR ${PROJECT_BINARY_DIR}/gen)
set(_ctrjoin_hbase_out ${CTRJOIN_GEN_DIR}/hbase)
set(_ctrjoin_hbase_sources
  ${_ctrjoin_hbase_out}/THBaseService.cpp
  ${_ctrjoin_hbase_out}/hbase_types.cpp
)
set(_ctrjoin_hbase_headers
  ${_ctrjoin_hbase_out}/THBaseService.h
  ${_ctrjoin_hbase_out}/hbase_types.h
)

# The output directory is emptied first so that a file the IDL no longer
# produces cannot linger and be included by mistake.
add_custom_command(
  OUTPUT ${_ctrjoin_hbase_sources} ${_ctrjoin_hbase_headers}
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${_ctrjoin_hbase_out}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_ctrjoin_hbase_out}
  COMMAND ${THRIFT_COMPILER} --gen cpp:no_skeleton,moveable_types
          -out ${_ctrjoin_hbase_out} ${CTRJOIN_HBASE_IDL}
  DEPENDS ${CTRJOIN_HBASE_IDL}
  COMMENT "Generating HBase Thrift2 bindings from joins/hbase.thrift"
  VERBATIM
)

add_library(ctrjoin_hbase_gen STATIC ${_ctrjoin_hbase_sources} ${_ctrjoin_hbase_headers})
target_include_directories(ctrjoin_hbase_gen PUBLIC ${CTRJOIN_GEN_DIR})
target_link_libraries(ctrjoin_hbase_gen PUBLIC PkgConfig::THRIFT Boost::headers)
