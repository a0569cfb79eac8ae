# CPU-only build with the node-gyp that ships with npm, for machines without CMake.
# CMakeLists.txt is the full build (optional CUDA); both read native/sources.gypi.
{
  'includes': ['native/sources.gypi'],
  'targets': [
    {
      'target_name': 'tunekit',
      'sources': ['<@(tunekit_sources)'],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': [
        'NAPI_VERSION=8',
        'NAPI_CPP_EXCEPTIONS',
        'TUNEKIT_BUILD_FLAVOUR="node-gyp-cpu"',
      ],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti'],
      'cflags_cc': ['-std=c++17', '-O3', '-fexceptions', '-fvisibility=hidden'],
      'conditions': [['OS=="linux"', {'ldflags': ['-Wl,-z,now'], 'libraries': ['-ldl']}]],
      'xcode_settings': {
        'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
        'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
        'OTHER_CPLUSPLUSFLAGS': ['-O3'],
      },
      'msvs_settings': {'VCCLCompilerTool': {'ExceptionHandling': 1}},
    },
  ],
}
