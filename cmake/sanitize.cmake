# Hardening builds (included from the top-level CMakeLists.txt right after the
# gcmalloc_objs target is defined). Each wants a build directory of its own.
#
#   GCMALLOC_SANITIZE=undefined  UBSan (-fno-sanitize-recover: the first
#                                report fails the test) on the allocator and
#                                every target defined after this point (tests).
#   GCMALLOC_SANITIZE=thread     TSan, the same way. The allocator stays the
#                                program's malloc in the tests that link it;
#                                see docs/reliability.md for what TSan can and
#                                cannot check there and which tests
#                                scripts/sanitize.sh runs.
#   GCMALLOC_FUZZ=ON             the libFuzzer harnesses (clang only):
#                                tests/fuzz/CMakeLists.txt.
#   GCMALLOC_FAULT_INJECTION     not an option: a macro that test sources define
#                                before including alloc/os.c (tests/api/test_oom_inject.c).
set(GCMALLOC_SANITIZE "" CACHE STRING "Build with a sanitizer: undefined or thread (empty: none)")
set_property(CACHE GCMALLOC_SANITIZE PROPERTY STRINGS "" undefined thread)
option(GCMALLOC_FUZZ "Build the libFuzzer harnesses in tests/fuzz (needs CMAKE_C_COMPILER=clang)" OFF)

if(GCMALLOC_SANITIZE STREQUAL "undefined")
  set(_gcm_san -fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)
elseif(GCMALLOC_SANITIZE STREQUAL "thread")
  set(_gcm_san -fsanitize=thread -fno-omit-frame-pointer -g)
elseif(NOT GCMALLOC_SANITIZE STREQUAL "")
  message(FATAL_ERROR "GCMALLOC_SANITIZE must be undefined or thread, not '${GCMALLOC_SANITIZE}'")
endif()
if(_gcm_san)
  target_compile_options(gcmalloc_objs PRIVATE ${_gcm_san})
  target_compile_definitions(gcmalloc_objs PRIVATE GCMALLOC_SANITIZE_${GCMALLOC_SANITIZE})
  add_compile_options(${_gcm_san})
  add_link_options(-fsanitize=${GCMALLOC_SANITIZE})
endif()
if(GCMALLOC_SANITIZE STREQUAL "thread")
  # Criterion cannot start under TSan (its shared arena collides with TSan's
  # reserved ranges; Criterion issue #274): the tests are compiled against a
  # stand-in header with its own main (tests/sanitize/criterion/criterion.h)
  # and do not link libcriterion. find_library() in tests/CMakeLists.txt keeps
  # a cache value that is already set.
  include_directories(BEFORE ${CMAKE_SOURCE_DIR}/tests/sanitize)
  set(CRITERION_LIB m CACHE FILEPATH "libcriterion (replaced by a stand-in under TSan)" FORCE)

  # gcmalloc cannot be the process's malloc under TSan: libtsan's start-up
  # (dlsym, before TSan's thread state exists) calls malloc, and gcmalloc's
  # instrumented code would run too early; libtsan's interceptors (strdup,
  # ...) also allocate with TSan's allocator. So in this build the malloc
  # family of libgcmalloc.a is renamed (malloc -> gcm_tsan_malloc, ...) with
  # objcopy, and every test is compiled with the same renaming (-Dmalloc=...):
  # the tests' own malloc/free/realloc/... calls reach gcmalloc directly -
  # every path of the allocator is exercised and instrumented - while libc,
  # ld.so and libtsan keep TSan's allocator.
  set(_gcm_family malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc
      pvalloc malloc_usable_size free_sized free_aligned_sized cfree mallinfo mallinfo2 malloc_trim
      malloc_stats malloc_info mallopt __libc_malloc __libc_free __libc_calloc __libc_realloc
      __libc_memalign __libc_valloc __libc_pvalloc)
  set(_gcm_map "")
  set(_gcm_map "")
  set(_gcm_defs "")
  foreach(f ${_gcm_family})
    string(APPEND _gcm_map "${f} gcm_tsan_${f}\n")
    list(APPEND _gcm_defs ${f}=gcm_tsan_${f})
  endforeach()
  file(WRITE ${CMAKE_BINARY_DIR}/tsan-rename-syms.txt "${_gcm_map}")
  # At the end of the top-level CMakeLists.txt, when gcmalloc_static and the
  # tests exist.
  function(gcm_tsan_rename)
    add_custom_command(TARGET gcmalloc_static POST_BUILD
      COMMAND ${CMAKE_OBJCOPY} --redefine-syms=${CMAKE_BINARY_DIR}/tsan-rename-syms.txt
              $<TARGET_FILE:gcmalloc_static>
      COMMENT "TSan build: renaming the malloc family in libgcmalloc.a")
    if(TARGET gcmalloc_static AND IS_DIRECTORY ${CMAKE_SOURCE_DIR}/tests)
      get_property(_tests DIRECTORY ${CMAKE_SOURCE_DIR}/tests PROPERTY BUILDSYSTEM_TARGETS)
      foreach(t ${_tests})
        target_compile_definitions(${t} PRIVATE ${_gcm_defs})
      endforeach()
    endif()
  endfunction()
  cmake_language(DEFER CALL gcm_tsan_rename)
endif()

if(GCMALLOC_FUZZ)
  add_subdirectory(tests/fuzz)
endif()
