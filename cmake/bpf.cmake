# memsight_bpf_skeleton(NAME SOURCE): compile one BPF program and generate its libbpf skeleton.
#
# - clang -target bpf with CO-RE relocations against the committed per-arch vmlinux.h: no kernel headers,
#   no BTF needed on the build host.
# - exact header dependencies through clang's depfile (DEPFILE), so editing abi.h or a *.bpf.h rebuilds.
# - the skeleton is written to a temporary file and renamed, so an interrupted build never leaves a
#   half-written header that a later build would trust.
# Defines an INTERFACE target NAME_skel whose include directory holds NAME.skel.h.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(MEMSIGHT_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(MEMSIGHT_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "memsight: no vmlinux.h for ${CMAKE_SYSTEM_PROCESSOR}")
endif()

function(memsight_bpf_skeleton name source)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/${name})
  set(object ${out_dir}/${name}.bpf.o)
  set(skeleton ${out_dir}/${name}.skel.h)
  set(depfile ${out_dir}/${name}.bpf.d)
  file(MAKE_DIRECTORY ${out_dir})
  add_custom_command(
    OUTPUT ${object}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${MEMSIGHT_BPF_ARCH}
            -I${PROJECT_SOURCE_DIR}/bpf/vmlinux/${MEMSIGHT_BPF_ARCH} -I${PROJECT_SOURCE_DIR}/include
            -I${PROJECT_SOURCE_DIR}/bpf -Wall -Werror
            -MD -MF ${depfile} -c ${CMAKE_CURRENT_SOURCE_DIR}/${source} -o ${object}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${object}.tmp ${object}
    DEPENDS ${source}
    DEPFILE ${depfile}
    COMMENT "BPF ${source}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skeleton}
    COMMAND ${BPFTOOL} gen skeleton ${object} name ${name} > ${skeleton}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skeleton}.tmp ${skeleton}
    DEPENDS ${object}
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skeleton})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${out_dir})
endfunction()
