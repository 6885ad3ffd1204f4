# taskfarm_library(NAME SOURCES...): one library per folder, public headers under include/.
function(taskfarm_library name)
  add_library(taskfarm_${name} ${ARGN})
  add_library(taskfarm::${name} ALIAS taskfarm_${name})
  set_target_properties(taskfarm_${name} PROPERTIES OUTPUT_NAME taskfarm_${name} EXPORT_NAME ${name})
  target_include_directories(taskfarm_${name}
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  # Public headers use C++20 (std::span, concepts): every consumer compiles as C++20 at least.
  target_compile_features(taskfarm_${name} PUBLIC cxx_std_20)
  target_link_libraries(taskfarm_${name} PRIVATE $<BUILD_INTERFACE:taskfarm_warnings> PUBLIC $<BUILD_INTERFACE:taskfarm_sanitize>)
  install(TARGETS taskfarm_${name} EXPORT taskfarmTargets)
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()
