# Runs one libFuzzer binary for SECONDS on a fresh copy of its seed corpus (the fuzz
# preset's fuzz_run_<target> tests). New inputs stay in WORK/corpus; a crash, leak or
# timeout is saved as WORK/crash-* (or leak-*, timeout-*) and fails the test.
#   cmake -DFUZZER=... -DCORPUS=... -DWORK=... -DSECONDS=15 -P run_fuzzer.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus)
file(COPY ${CORPUS}/ DESTINATION ${WORK}/corpus)
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2560
          -print_final_stats=1 -artifact_prefix=${WORK}/ ${WORK}/corpus
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${result}); its input is saved in ${WORK}/")
endif()
