#include <catch2/catch.hpp>

#include "core/cgroup_text.hpp"

using namespace memsight::core;

TEST_CASE("where a process sits: v1 memory controller and v2 unified path") {
  const auto v1 = parse_proc_cgroup(
      "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/8eac\n3:cpu,cpuacct:/x\n0::/\n");
  CHECK(v1.v1_memory == "/process_api/8eac");
  CHECK(v1.v2 == "/");
  const auto v2 = parse_proc_cgroup("0::/system.slice/order-svc.service\n");
  CHECK(v2.v2 == "/system.slice/order-svc.service");
  CHECK_FALSE(v2.v1_memory);
  CHECK(parse_proc_cgroup("5:cpu,memory:/a:b\n").v1_memory == "/a:b");  // ':' in a path
  CHECK_FALSE(parse_proc_cgroup("garbage\n\n").v2);
}

TEST_CASE("where the hierarchies are mounted") {
  const auto m = parse_cgroup_mounts(
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "36 31 0:33 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n"
      "bad line\n");
  CHECK(m.v1_memory == "/sys/fs/cgroup/memory");
  CHECK(m.v2 == "/sys/fs/cgroup/unified");
}

TEST_CASE("memory.stat: v1 totals and v2 keys, kernel summed where missing") {
  CgroupMemory v1;
  parse_memory_stat("cache 100\nrss 200\nshmem 3\ntotal_cache 1000\ntotal_rss 2000\ntotal_shmem 30\n", false, v1);
  CHECK(v1.anon_bytes == 2000u);
  CHECK(v1.file_bytes == 1000u);
  CHECK(v1.shmem_bytes == 30u);
  CgroupMemory v2;
  parse_memory_stat("anon 5\nfile 6\nkernel 7\nsock 8\nshmem 9\nslab 100\n", true, v2);
  CHECK(v2.anon_bytes == 5u);
  CHECK(v2.kernel_bytes == 7u);
  CHECK(v2.sock_bytes == 8u);
  CgroupMemory old_v2;
  parse_memory_stat("anon 1\nslab 10\nkernel_stack 20\npagetables 30\n", true, old_v2);
  CHECK(old_v2.kernel_bytes == 60u);
}

TEST_CASE("limits: max and the v1 sentinel mean unlimited") {
  CHECK(parse_limit("max\n") == std::nullopt);
  CHECK(parse_limit("9223372036854771712\n") == std::nullopt);
  CHECK(parse_limit("536870912\n") == 536870912u);
  CHECK(parse_limit("") == std::nullopt);
}

TEST_CASE("container ids in cgroup paths") {
  const std::string id(64, 'a');
  const std::string other = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  CHECK(container_id_of("/docker/" + id) == id);
  CHECK(container_id_of("/system.slice/docker-" + id + ".scope") == id);
  CHECK(container_id_of("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/"
                              "cri-containerd-" + other + ".scope") == other);
  CHECK(container_id_of("/machine.slice/libpod-" + id + ".scope/container") == id);
  CHECK(container_id_of("/kubepods/besteffort/pod0f/" + id + "/" + other) == other);  // innermost
  CHECK_FALSE(container_id_of("/user.slice/user-0.slice/session-3.scope"));
  CHECK_FALSE(container_id_of("/docker/" + id + "0"));  // 65 digits: not an id
  CHECK_FALSE(container_id_of("/docker/" + std::string(64, 'A')));  // runtimes write lower case
  CHECK_FALSE(container_id_of(""));
}
