# cad_unit_test(name SOURCES ... LIBS ...): one cmocka executable, registered with CTest, label "unit".
function(cad_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit)
endfunction()

# cad_e2e_test(name script): a bash suite under tests/e2e that drives the real binaries.
function(cad_e2e_test name script)
  add_test(NAME ${name} COMMAND bash ${CMAKE_SOURCE_DIR}/tests/e2e/${script})
  set_tests_properties(${name} PROPERTIES LABELS e2e
    ENVIRONMENT "CADENCE_BIN=$<TARGET_FILE:cadence>;CADENCE_SRC=${CMAKE_SOURCE_DIR};CADENCE_BUILD=${CMAKE_BINARY_DIR}")
endfunction()
