# Installs the build to a fresh prefix, builds tests/consumer against it with find_package and
# runs it. Eigen and nlohmann_json are hidden from the consumer: installed headers must not need
# them. Run with -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DGENERATOR=...
file(REMOVE_RECURSE "${WORK_DIR}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix"
                OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${CMAKE_COMMAND}" -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build"
                        -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release
                        "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix"
                        -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=TRUE
                        -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=TRUE
                COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${WORK_DIR}/build/consumer" "${WORK_DIR}/w.safetensors"
                COMMAND_ERROR_IS_FATAL ANY)
if(NOT EXISTS "${WORK_DIR}/w.safetensors")
  message(FATAL_ERROR "the consumer ran but wrote no file")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
