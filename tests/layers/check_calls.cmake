# Library calls that src/ must not make, each with the reason and what to use instead.
# A call is its name followed by "(" in a .cpp, .h or .c file of the tree.
#
#   cmake -DTREE=src -P tests/layers/check_calls.cmake

if(NOT TREE)
  message(FATAL_ERROR "usage: cmake -DTREE=DIR -P check_calls.cmake")
endif()

# NAME, then why. libnats 3.4 frees an ordered consumer's name in the thread that
# re-creates the consumer while closing a kvWatcher reads it (docs/design/cluster.md,
# "Watching a bucket"); kvStore_Keys closes one of its own.
set(kv_watcher "closes a kvWatcher, which can read freed memory in libnats 3.4: use cluster::KvWatch")
set(banned
    "kvStore_Watch|${kv_watcher}"
    "kvStore_WatchAll|${kv_watcher}"
    "kvStore_Keys|${kv_watcher}"
    "kvStore_History|${kv_watcher}"
    "kvWatcher_Stop|${kv_watcher}"
    "kvWatcher_Destroy|${kv_watcher}")

get_filename_component(TREE "${TREE}" ABSOLUTE)
file(GLOB_RECURSE files "${TREE}/*.cpp" "${TREE}/*.h" "${TREE}/*.c")
set(failures 0)
foreach(path IN LISTS files)
  file(STRINGS "${path}" lines)
  foreach(entry IN LISTS banned)
    string(REPLACE "|" ";" parts "${entry}")
    list(GET parts 0 name)
    list(GET parts 1 why)
    foreach(line IN LISTS lines)
      if(line MATCHES "(^|[^A-Za-z0-9_])${name}[ \t]*\\(")
        file(RELATIVE_PATH rel "${TREE}" "${path}")
        message(SEND_ERROR "${rel}: calls ${name}: ${why}")
        math(EXPR failures "${failures} + 1")
        break()
      endif()
    endforeach()
  endforeach()
endforeach()
list(LENGTH files count)
if(failures GREATER 0)
  message(FATAL_ERROR "${failures} banned call(s) in ${TREE}")
endif()
message(STATUS "${count} file(s) of ${TREE} checked: no banned call")
