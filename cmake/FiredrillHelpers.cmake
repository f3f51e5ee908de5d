# Shared compile settings and helpers for every Firedrill target.

add_library(firedrill_warnings INTERFACE)
target_compile_options(firedrill_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor>
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${FIREDRILL_WERROR}>>:-Werror>)

if(FIREDRILL_BUILD_FUZZERS)
  # Coverage instrumentation for libFuzzer, plus the sanitizers that turn
  # silent memory errors into findings.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(FIREDRILL_SANITIZE)
  # Quoted, so the list stays one generator expression (nvcc gets none of it).
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined;-fno-omit-frame-pointer;-fno-sanitize-recover=undefined>")
  add_link_options(-fsanitize=address,undefined)
endif()

# firedrill_library(NAME SOURCES... [DEPS ...] [PRIVATE_DEPS ...])
# Builds component NAME from the folder it is called in, as target
# firedrill_NAME with the alias firedrill::NAME. The public header folder is
# include/ (holding firedrill/NAME/*.h); sources stay private to the component.
function(firedrill_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(firedrill_${name} STATIC ${ARG_SOURCES})
  add_library(firedrill::${name} ALIAS firedrill_${name})
  target_include_directories(firedrill_${name}
    PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(firedrill_${name} PUBLIC ${ARG_DEPS} PRIVATE firedrill_warnings ${ARG_PRIVATE_DEPS})
  set_target_properties(firedrill_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

# firedrill_test(NAME SOURCES... DEPS ... [LABELS ...])
# One GoogleTest executable registered with ctest, test by test.
function(firedrill_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main firedrill_warnings)
  # One label per test: gtest_discover_tests flattens a list of labels.
  set(label unit)
  if(ARG_LABELS)
    set(label ${ARG_LABELS})
  endif()
  # Under ASan, a failed huge allocation must return null like glibc does,
  # so tests can check that it becomes a status.
  gtest_discover_tests(${name}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES LABELS ${label} ENVIRONMENT "ASAN_OPTIONS=allocator_may_return_null=1"
    DISCOVERY_TIMEOUT 60)
endfunction()
