# Decides whether the CUDA backend is built. AUTO builds it when nvcc is found;
# the CPU backend is always built, so every program runs without a GPU.
set(FIREDRILL_HAVE_CUDA OFF)
if(NOT FIREDRILL_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # sm_90 machine code plus compute_90 PTX, so newer GPUs JIT the kernels.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    # Static cudart: the program needs only the driver on the target machine,
    # and starts (on the CPU path) where there is no driver at all.
    set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
    # CMake 3.25 does not know how to ask nvcc for C++20; the .cu files need only C++17.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(FIREDRILL_HAVE_CUDA ON)
    message(STATUS "Firedrill: CUDA backend ON (${CMAKE_CUDA_COMPILER}, archs ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(FIREDRILL_CUDA STREQUAL "ON")
    message(FATAL_ERROR "FIREDRILL_CUDA=ON but no CUDA compiler was found")
  else()
    message(STATUS "Firedrill: CUDA backend OFF (nvcc not found); CPU backend only")
  endif()
endif()
