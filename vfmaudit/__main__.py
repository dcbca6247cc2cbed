from vfmaudit.cli import main

main()
