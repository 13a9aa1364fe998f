# install.cmake — what `cmake --install build --prefix P` puts where:
#   P/include/hearth/{hearth.h,hearth.hpp,hearth_plugin.h}
#   P/<libdir>/libhearth.so.1 (+ the libhearth.so and .so.<version> links)
#   P/<libdir>/hearth/plugins/libhearth-backend-cpu.so, libhearth-ext-*.so
#     (libhearth finds them there through its own location: no environment
#     variable needed)
#   P/bin/hearth, P/bin/hearth-conformance
#   P/<libdir>/cmake/hearth/{hearthConfig,hearthConfigVersion,hearthTargets}.cmake
#   P/<libdir>/pkgconfig/hearth.pc
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(HEARTH_INSTALL_PLUGINDIR ${CMAKE_INSTALL_LIBDIR}/hearth/plugins)
set(HEARTH_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/hearth)

if(TARGET hearth)
  target_include_directories(hearth INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  install(TARGETS hearth EXPORT hearthTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT hearth_sdk NAMELINK_COMPONENT hearth_sdk)
  install(FILES
    ${PROJECT_SOURCE_DIR}/sdk/include/hearth/hearth.h
    ${PROJECT_SOURCE_DIR}/sdk/include/hearth/hearth.hpp
    ${PROJECT_SOURCE_DIR}/sdk/include/hearth/hearth_plugin.h
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hearth COMPONENT hearth_sdk)
  install(EXPORT hearthTargets NAMESPACE hearth:: DESTINATION ${HEARTH_INSTALL_CMAKEDIR}
    COMPONENT hearth_sdk)
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/hearthConfig.cmake.in
    ${CMAKE_BINARY_DIR}/cmake/hearthConfig.cmake
    INSTALL_DESTINATION ${HEARTH_INSTALL_CMAKEDIR}
    PATH_VARS CMAKE_INSTALL_INCLUDEDIR HEARTH_INSTALL_PLUGINDIR)
  # The ABI major is the compatibility promise: 1.x accepts any 1.y.
  write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/hearthConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
  install(FILES ${CMAKE_BINARY_DIR}/cmake/hearthConfig.cmake
    ${CMAKE_BINARY_DIR}/cmake/hearthConfigVersion.cmake
    DESTINATION ${HEARTH_INSTALL_CMAKEDIR} COMPONENT hearth_sdk)
  # Relocatable: the prefix is found from where hearth.pc lies, so an
  # install under any --prefix (or DESTDIR, or a copied tree) works.
  file(RELATIVE_PATH HEARTH_PC_TO_PREFIX "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  configure_file(${PROJECT_SOURCE_DIR}/cmake/hearth.pc.in ${CMAKE_BINARY_DIR}/hearth.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/hearth.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
    COMPONENT hearth_sdk)
endif()

foreach(plugin hearth_backend_cpu hearth_backend_cuda hearth_backend_rocm hearth_ext_banned_strings)
  if(TARGET ${plugin})
    install(TARGETS ${plugin} LIBRARY DESTINATION ${HEARTH_INSTALL_PLUGINDIR}
      COMPONENT hearth_sdk)
  endif()
endforeach()

foreach(tool hearth_cli hearth_conformance_tool)
  if(TARGET ${tool})
    set_target_properties(${tool} PROPERTIES INSTALL_RPATH "\$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT hearth_sdk)
  endif()
endforeach()
