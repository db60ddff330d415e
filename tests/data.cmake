# tests for runner/data
rn_add_test(test_idx_reader SOURCES test_idx_reader.c LIBS rn_data)
rn_add_test(test_loader SOURCES test_loader.c LIBS rn_data)
rn_add_test(test_cifar_reader SOURCES test_cifar_reader.c LIBS rn_data)
rn_add_test(test_split SOURCES test_split.c LIBS rn_data)
