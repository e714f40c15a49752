# Sourced by .ci/run and scripts/test.sh: whether rustmp-mpi can be built with its `mpi` feature.
# rsmpi needs Open MPI's compiler wrapper (mpicc, which also tells it the flags) and libclang
# (bindgen loads it at build time; libclang-cpp is not enough).

# The directory holding libclang.so, or nothing.
libclang_dir() {
  local candidate
  for candidate in ${LIBCLANG_PATH:-} /usr/lib/llvm-*/lib /usr/lib/*-linux-gnu /usr/lib64 /usr/lib; do
    if [ -d "$candidate" ] && compgen -G "$candidate/libclang.so*" >/dev/null; then
      echo "$candidate"
      return
    fi
  done
}

# Succeeds when Open MPI (mpicc, mpirun) and libclang are present.
mpi_available() {
  command -v mpicc >/dev/null && command -v mpirun >/dev/null && [ -n "$(libclang_dir)" ]
}
