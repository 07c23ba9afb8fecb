from mandate.cli.main import main

main()
