from openarts.cli import main

main()
