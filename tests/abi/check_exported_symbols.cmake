# check_exported_symbols.cmake — keeps libhearth's exported symbols under
# review. Three lists must agree exactly:
#   1. the functions declared with HEARTH_API in hearth.h (HEADER),
#   2. tests/abi/exported_symbols.txt (EXPECTED; the reviewed list),
#   3. what `nm -D --defined-only` says libhearth.so exports (LIB).
# Also: nothing but hearth_* may be exported, and every hearth_* symbol must
# carry the HEARTH_<major>.<minor> version node of hearth.map.
#
#   cmake -DNM=nm -DLIB=libhearth.so -DHEADER=hearth.h -DEXPECTED=exported_symbols.txt \
#         -P check_exported_symbols.cmake
foreach(var NM LIB HEADER EXPECTED)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_exported_symbols: -D${var}=... is required")
  endif()
endforeach()

# 1. Declarations: a line starting with HEARTH_API up to its ';'. The first
#    `hearth_x(` in it is the function name (return types have no '(').
file(READ "${HEADER}" header_text)
# ';' separates CMake list items, so declarations end at '|' here.
string(REPLACE ";" "|" header_text "${header_text}")
string(REGEX MATCHALL "\nHEARTH_API [^|]*[|]" decls "${header_text}")
set(declared)
foreach(decl IN LISTS decls)
  string(REGEX MATCH "(hearth_[a-z0-9_]+)[ \t\r\n]*\\(" _ "${decl}")
  if(NOT CMAKE_MATCH_1)
    string(STRIP "${decl}" decl)
    message(FATAL_ERROR "check_exported_symbols: cannot find the function name in: ${decl}")
  endif()
  list(APPEND declared ${CMAKE_MATCH_1})
endforeach()
list(SORT declared)

# 2. The reviewed list: one name a line, '#' comments and blank lines ignored.
file(STRINGS "${EXPECTED}" expected_lines)
set(expected)
foreach(line IN LISTS expected_lines)
  string(STRIP "${line}" line)
  if(line STREQUAL "" OR line MATCHES "^#")
    continue()
  endif()
  list(APPEND expected ${line})
endforeach()
list(SORT expected)

# 3. The library.
execute_process(COMMAND "${NM}" -D --defined-only "${LIB}"
  OUTPUT_VARIABLE nm_out ERROR_VARIABLE nm_err RESULT_VARIABLE nm_rc)
if(NOT nm_rc EQUAL 0)
  message(FATAL_ERROR "check_exported_symbols: ${NM} -D --defined-only ${LIB} failed: ${nm_err}")
endif()
string(REPLACE "\n" ";" nm_lines "${nm_out}")
set(exported)
set(foreign)
set(unversioned)
foreach(line IN LISTS nm_lines)
  if(NOT line MATCHES "^[0-9a-fA-F]* *([A-Za-z]) (.+)$")
    continue()
  endif()
  set(type "${CMAKE_MATCH_1}")
  set(full "${CMAKE_MATCH_2}")
  string(REGEX REPLACE "@.*$" "" name "${full}")
  if(type STREQUAL "A" AND name MATCHES "^HEARTH_[0-9]+\\.[0-9]+$")
    continue()  # a version node of hearth.map, not a symbol
  endif()
  if(NOT name MATCHES "^hearth_")
    list(APPEND foreign "${full}")
    continue()
  endif()
  if(NOT full MATCHES "@@?HEARTH_[0-9]+\\.[0-9]+$")
    list(APPEND unversioned "${full}")
  endif()
  list(APPEND exported ${name})
endforeach()
list(SORT exported)

# Report every difference, then fail once.
set(report "")
macro(diff_lists title left left_name right right_name)
  set(only_left ${${left}})
  set(only_right ${${right}})
  if(only_left AND ${right})
    list(REMOVE_ITEM only_left ${${right}})
  endif()
  if(only_right AND ${left})
    list(REMOVE_ITEM only_right ${${left}})
  endif()
  if(only_left OR only_right)
    string(APPEND report "\n${title}:\n")
    foreach(s IN LISTS only_left)
      string(APPEND report "  - ${s}   (in ${left_name}, missing from ${right_name})\n")
    endforeach()
    foreach(s IN LISTS only_right)
      string(APPEND report "  + ${s}   (in ${right_name}, missing from ${left_name})\n")
    endforeach()
  endif()
endmacro()

diff_lists("hearth.h vs exported_symbols.txt" declared "hearth.h" expected "exported_symbols.txt")
diff_lists("exported_symbols.txt vs libhearth.so" expected "exported_symbols.txt"
           exported "libhearth.so")
if(foreign)
  string(APPEND report "\nexported symbols that are not hearth_* (hearth.map must hide them):\n")
  foreach(s IN LISTS foreign)
    string(APPEND report "  + ${s}\n")
  endforeach()
endif()
if(unversioned)
  string(APPEND report "\nhearth_* symbols without a HEARTH_<major>.<minor> version (hearth.map):\n")
  foreach(s IN LISTS unversioned)
    string(APPEND report "  ! ${s}\n")
  endforeach()
endif()

list(LENGTH declared n_declared)
list(LENGTH exported n_exported)
if(report)
  message(FATAL_ERROR "ABI symbol check failed for ${LIB}${report}\n"
    "(${n_declared} declared in hearth.h, ${n_exported} exported.) If the change is intended, "
    "update tests/abi/exported_symbols.txt in the same commit and follow docs/abi/versioning.md.")
endif()
message(STATUS "ABI symbol check passed: ${n_exported} hearth_* symbols, as declared and reviewed")
