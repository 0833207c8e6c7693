# The in-memory HBase Thrift2 test server (library ctrjoin_test_hbase and the
# manual-testing executable ctrjoin-test-hbase) and the HBase client tests.
# Included by the root CMakeLists.txt right after add_subdirectory(tests);
# needs ctrjoin_hbase_gen (joins/hbase_thrift.cmake) and ctrjoin_joins, which
# holds joins/hbase_client.cc.

include(GoogleTest)

add_library(ctrjoin_test_hbase ${CMAKE_CURRENT_LIST_DIR}/hbase_server.cc)
target_link_libraries(ctrjoin_test_hbase PUBLIC ctrjoin_joins ctrjoin_hbase_gen ctrjoin_core)

add_executable(ctrjoin-test-hbase ${CMAKE_CURRENT_LIST_DIR}/hbase_server_main.cc)
target_link_libraries(ctrjoin-test-hbase PRIVATE ctrjoin_test_hbase CLI11::CLI11)

# Starts servers on 127.0.0.1 ephemeral ports; every test is bounded by its
# own timeouts, and TIMEOUT is the backstop against a hang.
add_executable(hbase_client_test ${CMAKE_CURRENT_LIST_DIR}/../joins/hbase_client_test.cc)
target_link_libraries(hbase_client_test PRIVATE
  ctrjoin_test_hbase ctrjoin_joins ctrjoin_hbase_gen GTest::gtest GTest::gtest_main)
gtest_discover_tests(hbase_client_test
  PROPERTIES LABELS integration TIMEOUT 120
  DISCOVERY_TIMEOUT 60)
