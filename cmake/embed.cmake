# cad_embed(OUTPUT out.c SYMBOL name FILES a b c): turns files into a C table
#   const struct cad_embedded name[] = {{"a", data, len}, ..., {NULL, NULL, 0}};
# so migrations, web assets and help text live in the binary and come from one source file.
function(cad_embed)
  cmake_parse_arguments(E "" "OUTPUT;SYMBOL" "FILES" ${ARGN})
  # A ;-list would be split into separate command arguments; pass it |-separated.
  string(REPLACE ";" "|" files_arg "${E_FILES}")
  add_custom_command(
    OUTPUT ${E_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -DOUT=${E_OUTPUT} -DSYMBOL=${E_SYMBOL} "-DFILES=${files_arg}"
            -P ${CMAKE_SOURCE_DIR}/cmake/embed-run.cmake
    VERBATIM
    DEPENDS ${E_FILES} ${CMAKE_SOURCE_DIR}/cmake/embed-run.cmake
    COMMENT "Embedding ${E_SYMBOL}")
endfunction()
