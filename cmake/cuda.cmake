# Decides whether the CUDA backend is built. AUTO builds it when nvcc is found.
set(TRANQ_WITH_CUDA OFF)
if(NOT TRANQ_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(TRANQ_WITH_CUDA ON)
  elseif(TRANQ_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TRANQ_CUDA=ON but no CUDA compiler was found; install the CUDA toolkit "
                        "or configure with -DTRANQ_CUDA=OFF")
  endif()
endif()
if(TRANQ_SANITIZE AND TRANQ_WITH_CUDA)
  message(STATUS "tranq: TRANQ_SANITIZE builds the CPU backend only")
  set(TRANQ_WITH_CUDA OFF)
endif()
if(TRANQ_WITH_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90)  # sm_90 SASS plus compute_90 PTX
  endif()
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  find_package(CUDAToolkit REQUIRED)
  # cuDNN (the CUDA convolutions): in the toolkit's directories (some installs put it there) or
  # under CUDNN_ROOT (cache variable or environment). TRANQ_CUDNN=AUTO builds without it when it
  # is missing (CUDA convolutions then throw DeviceError saying so), ON requires it, OFF skips it.
  set(TRANQ_CUDNN AUTO CACHE STRING "Use cuDNN for CUDA convolutions: AUTO, ON or OFF")
  set_property(CACHE TRANQ_CUDNN PROPERTY STRINGS AUTO ON OFF)
  set(CUDNN_ROOT "$ENV{CUDNN_ROOT}" CACHE PATH "cuDNN install prefix (for the CUDA backend)")
  set(TRANQ_WITH_CUDNN OFF)
  if(NOT TRANQ_CUDNN STREQUAL "OFF")
    find_path(TRANQ_CUDNN_INCLUDE_DIR cudnn.h
              HINTS ${CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}
              PATH_SUFFIXES include)
    # libcudnn.so.N by name too: the pip packages (nvidia-cudnn-*) ship no unversioned link.
    find_library(TRANQ_CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 libcudnn.so.8
                 HINTS ${CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}
                 PATH_SUFFIXES lib64 lib lib/x64)
    if(TRANQ_CUDNN_INCLUDE_DIR AND TRANQ_CUDNN_LIBRARY)
      set(TRANQ_WITH_CUDNN ON)
      message(STATUS "tranq: cuDNN ${TRANQ_CUDNN_LIBRARY}")
    elseif(TRANQ_CUDNN STREQUAL "ON")
      message(FATAL_ERROR "TRANQ_CUDNN=ON but cuDNN (cudnn.h and libcudnn, version 8 or 9) was not "
                          "found (header: ${TRANQ_CUDNN_INCLUDE_DIR}, library: "
                          "${TRANQ_CUDNN_LIBRARY}). Install cuDNN, point -DCUDNN_ROOT=<prefix> at "
                          "it, or configure with -DTRANQ_CUDNN=AUTO or OFF.")
    else()
      message(WARNING "tranq: cuDNN not found (set CUDNN_ROOT to its prefix); building the CUDA "
                      "backend without it: convolutions on CUDA tensors will throw DeviceError")
    endif()
  endif()
  set(TRANQ_WITH_CUDA_INT 1)
else()
  set(TRANQ_WITH_CUDA_INT 0)
endif()
message(STATUS "tranq: CUDA backend ${TRANQ_WITH_CUDA}")

function(tranq_enable_cuda target)
  target_link_libraries(${target} PUBLIC CUDA::cudart PRIVATE CUDA::cublas)
  if(TRANQ_WITH_CUDNN)
    target_link_libraries(${target} PRIVATE ${TRANQ_CUDNN_LIBRARY})
    target_include_directories(${target} PRIVATE ${TRANQ_CUDNN_INCLUDE_DIR})
    target_compile_definitions(${target} PRIVATE TRANQ_WITH_CUDNN=1)
  else()
    target_compile_definitions(${target} PRIVATE TRANQ_WITH_CUDNN=0)
  endif()
  set_target_properties(${target} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
  # -lineinfo: memcheck and profilers name the source line (no run-time cost). Host code of the
  # .cu files computes constants the kernels must match bit for bit (e.g. 1 - lr*wd), so it is
  # not contracted into FMAs, whatever the host compiler's defaults.
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo -Xcompiler=-ffp-contract=off>)
endfunction()
